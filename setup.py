"""Package layout that pyproject.toml cannot express: the report templates.

The templates live in the repository's top-level ``reports/templates/`` (where an
institution's designers find them) and ship in the wheel as the mapped package directory
``ecgaudit/reports/templates/``. Everything else is configured in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["ecgaudit*"]), "ecgaudit.reports.templates"],
    package_dir={"ecgaudit.reports.templates": "reports/templates"},
)
