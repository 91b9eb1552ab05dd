"""Doorbell example skill (to be implemented with the skill-host issue)."""


class DoorbellSkill:
    name = "doorbell"
    tools: list = []

    async def handle(self, tool_name, args):  # pragma: no cover - placeholder
        raise NotImplementedError
