# ruff: noqa
# Opening a network connection.
import socket

s = socket.create_connection(("127.0.0.1", 5432))
result = "connected"
