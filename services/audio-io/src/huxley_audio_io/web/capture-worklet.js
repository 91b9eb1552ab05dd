// Microphone capture: the context's rate -> PCM16 24 kHz mono, in 20 ms frames.
// Linear interpolation keeps its phase across render quanta, so the output is
// one continuous signal whatever the input block size.

const OUT_RATE = 24000;
const FRAME = 480; // 20 ms at 24 kHz

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    this.pos = 0; // next output position, relative to the current block (-1 = previous sample)
    this.prev = 0;
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
    this.energy = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") {
        this.emit(this.filled);
        this.port.postMessage({ flushed: true });
      }
    };
  }

  emit(count) {
    if (count > 0) {
      const pcm = this.frame.slice(0, count);
      const level = Math.sqrt(this.energy / count);
      this.port.postMessage({ pcm: pcm.buffer, level }, [pcm.buffer]);
    }
    this.filled = 0;
    this.energy = 0;
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    this.energy += clipped * clipped;
    if (this.filled === FRAME) this.emit(FRAME);
  }

  process(inputs) {
    const input = inputs[0];
    const data = input && input[0];
    if (!data || data.length === 0) return true;
    const last = data.length - 1;
    while (this.pos < last) {
      const i = Math.floor(this.pos);
      const a = i < 0 ? this.prev : data[i];
      const b = data[i + 1];
      this.push(a + (b - a) * (this.pos - i));
      this.pos += this.step;
    }
    this.pos -= data.length;
    this.prev = data[last];
    return true;
  }
}

registerProcessor("huxley-capture", CaptureProcessor);
