"""The agent: it reads what the hooks recorded, decides what to send, and delivers it.

    worker.py    Agent: one pass (ingest, claim, send, file the outcome) and the service loop
    ingest.py    inbox records -> queue entries (parse, references, links)
    lifetime.py  building an agent, starting one in the background, its locks, lingering, exit
"""
from hookagent.agent.worker import Agent, Pass

__all__ = ["Agent", "Pass"]
