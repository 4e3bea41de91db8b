#!/usr/bin/env python3
"""Opens CONNECTIONS requests that send their body one byte every INTERVAL seconds, for
SECONDS, reopening each one the server closes (a hostile tenant's trickled bodies).
Usage: python3 bench/trickle.py PORT KEY CONNECTIONS SECONDS [INTERVAL]"""
import socket
import sys
import time

port, key, count, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.5
head = (f"POST /v1/sessions/trickle/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{").encode()


def connect():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    s.setblocking(False)
    return s


sockets = [connect() for _ in range(count)]
opened, end = count, time.time() + seconds
while time.time() < end:
    for i, s in enumerate(sockets):
        try:
            s.send(b" ")
        except OSError:
            s.close()
            sockets[i] = connect()
            opened += 1
    time.sleep(interval)
print(f"trickled bodies: {count} at a time, {opened} opened")
