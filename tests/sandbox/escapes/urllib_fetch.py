# ruff: noqa
# Fetching a URL with the standard library.
import urllib.request

result = urllib.request.urlopen("http://127.0.0.1:1883").read()
