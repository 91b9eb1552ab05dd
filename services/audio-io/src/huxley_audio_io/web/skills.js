// The skills panel: every skill the skill hosts run, its status and tools,
// and a switch that turns it off and on (set_skill_enabled). The server
// answers each request with a fresh skills_state.

export function renderSkills(list, state, send) {
  list.replaceChildren();
  if (state.skills.length === 0) {
    const empty = document.createElement("li");
    empty.className = "muted";
    empty.textContent = "no skill host has announced itself yet";
    list.append(empty);
    return;
  }
  for (const skill of state.skills) {
    const item = document.createElement("li");
    item.dataset.skill = skill.name;
    item.dataset.status = skill.status ?? "";
    const toggle = document.createElement("input");
    toggle.type = "checkbox";
    toggle.checked = Boolean(skill.enabled);
    toggle.title = skill.enabled ? "turn off" : "turn on";
    toggle.addEventListener("change", () => {
      toggle.disabled = true; // until the answer redraws the panel
      send({ type: "set_skill_enabled", skill: skill.name, enabled: toggle.checked });
    });
    const name = document.createElement("strong");
    name.textContent = skill.name;
    const status = document.createElement("span");
    status.className = "skill-status";
    status.textContent = skill.status ?? "?";
    const tools = document.createElement("span");
    tools.className = "muted";
    tools.textContent = (skill.tools ?? []).join(", ") || "no tools";
    item.append(toggle, " ", name, " ", status, " ", tools);
    if (skill.error) item.title = skill.error;
    list.append(item);
  }
}
