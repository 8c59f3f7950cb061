#!/usr/bin/env python3
"""Asks every X window named argv[1] to close, as a window manager's close
button does (WM_DELETE_WINDOW). Used by the desktop test and the desktop
benchmark; needs Debian's python3-xlib. Prints how many it asked."""
import sys
from Xlib import display, X, protocol

d = display.Display()
protocols = d.intern_atom("WM_PROTOCOLS")
delete = d.intern_atom("WM_DELETE_WINDOW")


def walk(w):
    # Windows come and go while walked: one gone is skipped.
    try:
        children = w.query_tree().children
    except Exception:
        return
    for c in children:
        yield c
        yield from walk(c)


sent = 0
for w in walk(d.screen().root):
    try:
        name = w.get_wm_name()
    except Exception:
        continue
    if name in (sys.argv[1], sys.argv[1].encode()):
        ev = protocol.event.ClientMessage(
            window=w, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])
        )
        w.send_event(ev, event_mask=X.NoEventMask)
        sent += 1
d.flush()
print(sent)
