"""hookagent: commits that mention tracker stories, delivered from git and svn hooks through a durable spool."""

__version__ = "0.1.0"
