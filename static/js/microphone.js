// Microphone capture: getUserMedia → AudioWorklet → 16 kHz PCM16 frames.

export const TARGET_RATE = 16000;
// 40 ms frames: small enough for quick endpointing, large enough that the
// per-message overhead stays negligible (25 messages per second).
const FRAME_MS = 40;

export class Microphone {
  constructor(context, workletUrl, onFrame) {
    this.context = context;
    this.workletUrl = workletUrl;
    this.onFrame = onFrame;
    this.stream = null;
    this.muted = false;
  }

  // Throws the getUserMedia DOMException (NotAllowedError, NotFoundError ...).
  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    await this.context.audioWorklet.addModule(this.workletUrl);
    const source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, "pcm-capture", {
      processorOptions: { targetRate: TARGET_RATE, frameMs: FRAME_MS },
    });
    this.node.port.onmessage = (event) => {
      if (!this.muted) this.onFrame(event.data);
    };
    source.connect(this.node);
    // The audio graph is pulled from the destination: a silent path keeps the worklet running.
    const silent = this.context.createGain();
    silent.gain.value = 0;
    this.node.connect(silent).connect(this.context.destination);
  }

  setMuted(muted) {
    this.muted = muted;
    for (const track of this.stream?.getAudioTracks() ?? []) track.enabled = !muted;
  }

  stop() {
    this.node?.port.close();
    this.node?.disconnect();
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
  }
}
