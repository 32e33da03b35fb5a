"""An elector whose decisions the unit test makes (controller/mastership.py)."""
from controller import mastership


class FakeElector(mastership.Elector):
    def __init__(self):
        self.calls = []          # ("contend" | "release", dpid), in order
        self.generations = {}    # dpid -> newest generation this "cluster" handed out

    def contend(self, dpid):
        self.calls.append(("contend", dpid))

    def release(self, dpid):
        self.calls.append(("release", dpid))

    def generation(self, dpid):
        return self.generations.get(dpid, 0)

    # --- what the test decides ----------------------------------------------------------
    def win(self, dpid, generation):
        self.generations[dpid] = generation
        self._won(dpid, generation)

    def lose(self, dpid, new_generation=None):
        if new_generation is not None:   # another node won it meanwhile
            self.generations[dpid] = new_generation
        self._lost(dpid)
