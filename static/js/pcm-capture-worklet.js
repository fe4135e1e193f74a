// AudioWorklet: microphone samples at the context's rate (often 44.1 or 48 kHz)
// → 16 kHz PCM16 little-endian frames posted to the main thread.
//
// Decimation by area averaging: each output sample is the mean of the input
// signal over its 1/16000 s interval, fractional edge samples weighted by how
// much of them falls inside. The box average is the low-pass that keeps speech
// (< 4 kHz) and suppresses what would alias, and it works for ratios like
// 44100/16000 = 2.75625 that no integer decimator handles.

class PcmCaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, frameMs = 40 } = options.processorOptions ?? {};
    this.ratio = sampleRate / targetRate; // input samples per output sample
    this.frame = new Int16Array(Math.round((targetRate * frameMs) / 1000));
    this.filled = 0;
    this.sum = 0; // weighted input sum of the output sample being built
    this.weight = 0; // input samples (fractional) it holds so far
  }

  emit(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    if (this.filled === this.frame.length) {
      const out = this.frame.slice();
      this.port.postMessage(out.buffer, [out.buffer]);
      this.filled = 0;
    }
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (!channel) return true;
    const ratio = this.ratio;
    for (let i = 0; i < channel.length; i++) {
      const x = channel[i];
      let left = 1; // how much of this input sample is still to be assigned
      while (left > 0) {
        const take = Math.min(left, ratio - this.weight);
        this.sum += x * take;
        this.weight += take;
        left -= take;
        if (this.weight >= ratio - 1e-9) {
          this.emit(this.sum / ratio);
          this.sum = 0;
          this.weight = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCaptureProcessor);
