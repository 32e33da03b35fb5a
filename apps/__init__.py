"""Thin Ryu applications: events in, flows/ out, REST routes. Each runs alone or combined."""
