"""Only for ``scrapyd-deploy``: it builds the egg with ``python setup.py bdist_egg``.

Everything about the package is declared in pyproject.toml; without this file
scrapyd-deploy would write a setup.py of its own into the checkout on every deploy.
"""

from setuptools import setup

setup()
