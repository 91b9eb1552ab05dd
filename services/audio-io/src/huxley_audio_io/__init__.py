"""Audio-io: microphone, speaker, the web client gateway and the mixer."""
