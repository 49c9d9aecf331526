// Microphone capture and playback for the WebSocket transport, which —
// unlike WebRTC — leaves audio to the page: PCM16 mono at 24 kHz both ways.

const RATE = 24000;

// The capture worklet gathers 100 ms of samples and posts them as PCM16.
const WORKLET = `
class Capture extends AudioWorkletProcessor {
  constructor() { super(); this.buf = new Int16Array(${RATE / 10}); this.n = 0; }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) {
      for (let i = 0; i < ch.length; i++) {
        const s = Math.max(-1, Math.min(1, ch[i]));
        this.buf[this.n++] = s < 0 ? s * 0x8000 : s * 0x7fff;
        if (this.n === this.buf.length) {
          this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
          this.buf = new Int16Array(${RATE / 10});
          this.n = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor('voicegate-capture', Capture);
`;

// capture opens the microphone and calls onPCM with each 100 ms of PCM16
// (an ArrayBuffer). It resolves to a handle whose stop() releases the mic.
export async function capture(onPCM) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  const ctx = new AudioContext({ sampleRate: RATE });
  const url = URL.createObjectURL(new Blob([WORKLET], { type: 'text/javascript' }));
  try {
    await ctx.audioWorklet.addModule(url);
  } finally {
    URL.revokeObjectURL(url);
  }
  const src = ctx.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(ctx, 'voicegate-capture');
  node.port.onmessage = (e) => onPCM(e.data);
  // A silent path to the destination keeps the graph pulled.
  const mute = ctx.createGain();
  mute.gain.value = 0;
  src.connect(node).connect(mute).connect(ctx.destination);
  await ctx.resume();
  return {
    stop() {
      node.port.onmessage = null;
      stream.getTracks().forEach((t) => t.stop());
      ctx.close();
    },
  };
}

// Player plays PCM16 chunks back to back and can be cut short when the
// user interrupts the assistant.
export class Player {
  constructor() {
    this.ctx = new AudioContext({ sampleRate: RATE });
    this.next = 0;
    this.sources = new Set();
  }

  play(buf) {
    const pcm = new Int16Array(buf);
    if (pcm.length === 0) return;
    const audio = this.ctx.createBuffer(1, pcm.length, RATE);
    const ch = audio.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 0x8000;
    const src = this.ctx.createBufferSource();
    src.buffer = audio;
    src.connect(this.ctx.destination);
    const at = Math.max(this.ctx.currentTime, this.next);
    src.start(at);
    this.next = at + audio.duration;
    this.sources.add(src);
    src.onended = () => this.sources.delete(src);
  }

  interrupt() {
    for (const s of this.sources) { try { s.stop(); } catch { /* not started */ } }
    this.sources.clear();
    this.next = 0;
  }

  close() {
    this.interrupt();
    this.ctx.close();
  }
}
