# ruff: noqa
import subprocess

from setuptools import setup
from setuptools.command.install import install


class PostInstall(install):
    def run(self):
        install.run(self)
        subprocess.call(["true"])


setup(name="setup-plugin", version="1.0.0", packages=["setup_plugin"], cmdclass={"install": PostInstall})
