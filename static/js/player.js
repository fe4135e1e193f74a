// Gapless playback of streamed PCM16 audio: each chunk becomes an AudioBuffer
// at the stream's own sample rate, scheduled to start exactly where the
// previous one ends. flush() stops everything at once (barge-in).

// Scheduling a little ahead absorbs network jitter between chunks without a
// noticeable delay before the agent starts to speak.
const LEAD_S = 0.05;

export class PcmPlayer {
  constructor(context) {
    this.context = context;
    this.sampleRate = 24000;
    this.nextTime = 0;
    this.sources = new Set();
    this.carry = null; // an odd trailing byte, completed by the next chunk
  }

  get playing() {
    return this.sources.size > 0;
  }

  enqueue(arrayBuffer) {
    let bytes = new Uint8Array(arrayBuffer);
    if (this.carry !== null) {
      const joined = new Uint8Array(bytes.length + 1);
      joined[0] = this.carry;
      joined.set(bytes, 1);
      bytes = joined;
      this.carry = null;
    }
    if (bytes.length % 2) {
      this.carry = bytes[bytes.length - 1];
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    const samples = bytes.length / 2;
    if (!samples) return;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const buffer = this.context.createBuffer(1, samples, this.sampleRate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples; i++) channel[i] = view.getInt16(i * 2, true) / 0x8000;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    const start = Math.max(this.nextTime, this.context.currentTime + LEAD_S);
    source.start(start);
    this.nextTime = start + buffer.duration;
    this.sources.add(source);
    source.onended = () => this.sources.delete(source);
  }

  flush() {
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        // Already stopped.
      }
    }
    this.sources.clear();
    this.nextTime = 0;
    this.carry = null;
  }
}
