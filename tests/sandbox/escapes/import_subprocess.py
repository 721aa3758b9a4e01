# ruff: noqa
# subprocess spawns commands.
import subprocess

result = subprocess.run(["id"], capture_output=True).stdout
