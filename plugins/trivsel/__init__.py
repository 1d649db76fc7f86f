"""trivsel: psychosocial work-environment data from Danish municipalities into one warehouse."""

__version__ = "0.1.0"
