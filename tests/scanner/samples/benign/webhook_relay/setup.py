# ruff: noqa
from setuptools import find_packages, setup

setup(name="webhook-relay", version="1.0.0", packages=find_packages())
