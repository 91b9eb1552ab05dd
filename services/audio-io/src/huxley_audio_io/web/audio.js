// The browser's audio: microphone capture (getUserMedia -> AudioWorklet ->
// PCM16 24 kHz frames) and playback of the PCM16 24 kHz the server sends.

const RATE = 24000;
const LEAD_S = 0.06; // how far ahead playback starts after a gap (absorbs network jitter)

export class AudioEngine {
  constructor({ onMicFrame, onMicLevel }) {
    this.onMicFrame = onMicFrame;
    this.onMicLevel = onMicLevel;
    this.ctx = null;
    this.output = null;
    this.analyser = null;
    this.capture = null;
    this.micReady = null;
    this.flushWaiters = [];
    this.sources = new Set();
    this.next = 0;
    this.volume = 100;
    this.playedSamples = 0;
  }

  get running() {
    return this.ctx !== null && this.ctx.state === "running";
  }

  // Creating or resuming an AudioContext needs a user gesture in most browsers.
  async unlock() {
    if (this.ctx === null) {
      this.ctx = new AudioContext({ latencyHint: "interactive" });
      this.output = this.ctx.createGain();
      this.analyser = this.ctx.createAnalyser();
      this.analyser.fftSize = 1024;
      this.output.connect(this.analyser);
      this.analyser.connect(this.ctx.destination);
      this.setVolume(this.volume);
    }
    if (this.ctx.state !== "running") await this.ctx.resume();
  }

  async enableMic() {
    if (this.micReady === null) this.micReady = this.openMic();
    return this.micReady;
  }

  async openMic() {
    await this.unlock();
    await this.ctx.audioWorklet.addModule("/static/capture-worklet.js");
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
    });
    const source = this.ctx.createMediaStreamSource(stream);
    this.capture = new AudioWorkletNode(this.ctx, "huxley-capture", { numberOfInputs: 1, numberOfOutputs: 0 });
    this.capture.port.onmessage = (event) => {
      if (event.data.flushed) {
        for (const resolve of this.flushWaiters.splice(0)) resolve();
        return;
      }
      this.onMicLevel(event.data.level);
      this.onMicFrame(new Int16Array(event.data.pcm));
    };
    source.connect(this.capture);
  }

  // Every captured sample so far reaches onMicFrame before this resolves.
  flushMic() {
    if (this.capture === null) return Promise.resolve();
    return new Promise((resolve) => {
      this.flushWaiters.push(resolve);
      this.capture.port.postMessage("flush");
      setTimeout(resolve, 250); // never hold a release hostage to the worklet
    });
  }

  play(pcm) {
    if (!this.running || pcm.length === 0) return;
    const samples = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
    const buffer = this.ctx.createBuffer(1, samples.length, RATE);
    buffer.copyToChannel(samples, 0);
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.output);
    const now = this.ctx.currentTime;
    if (this.next < now + 0.005) this.next = now + LEAD_S;
    source.start(this.next);
    this.next += buffer.duration;
    this.sources.add(source);
    source.onended = () => {
      if (this.sources.delete(source)) this.playedSamples += samples.length;
    };
  }

  // audio_clear and PTT: drop everything queued, at once.
  clear() {
    const queued = [...this.sources];
    this.sources.clear();
    for (const source of queued) {
      try {
        source.stop();
      } catch {
        // not started yet or already done
      }
    }
    this.next = 0;
  }

  setVolume(level) {
    this.volume = Math.max(0, Math.min(100, level));
    // Same curve as the server's mixer: square law.
    if (this.output) this.output.gain.value = (this.volume / 100) ** 2;
  }

  speakerLevel() {
    if (this.analyser === null) return 0;
    const data = new Float32Array(this.analyser.fftSize);
    this.analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    return Math.sqrt(sum / data.length);
  }
}
