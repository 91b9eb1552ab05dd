"""Doorbell: an example Huxley skill that speaks first.

When someone rings, the skill counts the visit (in its storage, so the count
survives restarts), tells the web client, and asks the assistant to announce
it. The doorbell itself is simulated: the web page sends the client event
`doorbell.ring`, and `ring_every_s` in the persona makes it ring on its own.
"""

from huxley_skill_doorbell.skill import DoorbellSkill

__all__ = ["DoorbellSkill"]
