"""trivsel.ports.free_port: the one way the bench and the tests pick a port for a server of their own."""

from __future__ import annotations

import socket
from contextlib import ExitStack

from trivsel import ports
from trivsel.ports import free_port


def _bind(stack: ExitStack, port: int = 0) -> int:
    s = stack.enter_context(socket.socket())
    s.bind(("127.0.0.1", port))
    s.listen()
    return s.getsockname()[1]


def test_the_port_it_hands_out_can_be_bound():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        assert s.getsockname()[1] == port


def test_a_range_skips_the_ports_held_and_falls_back_when_full():
    with ExitStack() as stack:
        held = _bind(stack)
        # [held, held + 2): the first is held, the next is free unless another process took it meanwhile
        picked = free_port(held, held + 2)
        assert picked != held
        assert picked == held + 1 or not ports._bindable(held + 1), picked
        # a range of only held ports: the OS picks one outside it
        assert free_port(held, held + 1) != held
