"""The turn coordinator's concerns, one module each; `huxley_bridge.coordinator`
puts them together behind one pure `handle(event, now)`."""
