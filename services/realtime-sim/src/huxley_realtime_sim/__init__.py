"""A local server that speaks the OpenAI Realtime websocket protocol, scripted."""

from huxley_realtime_sim.markers import detect_markers, marker_pcm
from huxley_realtime_sim.rules import RuleBook, RulesError, load_rules, parse_rules
from huxley_realtime_sim.server import SimServer

__all__ = ["RuleBook", "RulesError", "SimServer", "detect_markers", "load_rules", "marker_pcm", "parse_rules"]
