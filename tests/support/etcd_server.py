"""A real etcd for tests: the lab kit's (mininet_topos/labkit/etcd.py), named here as
the tests have always imported it."""
from mininet_topos.labkit.etcd import (  # noqa: F401
    ETCD, EtcdServer, make_tls, running, running_cluster)
