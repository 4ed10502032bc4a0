// Reading the member's QR code with the device camera: the browser's BarcodeDetector where it
// exists, else jsQR (a well-kept decoder, loaded by the page) on frames drawn to a canvas.
// Without a camera (or permission, or a secure context) the cashier types the card number.

const FRAME_MS = 120;
const MAX_WIDTH = 720;

export class CameraUnavailable extends Error {}

export class Scanner {
  constructor(video, onCode) {
    this.video = video;
    this.onCode = onCode;
    this.stream = null;
    this.timer = 0;
    this.detector = null;
    this.canvas = document.createElement('canvas');
  }

  async start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new CameraUnavailable('no-camera-api');
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 } }, audio: false,
      });
    } catch (err) {
      throw new CameraUnavailable(err.name === 'NotAllowedError' ? 'denied' : 'no-camera');
    }
    this.video.srcObject = this.stream;
    this.video.setAttribute('playsinline', '');
    this.video.muted = true;
    await this.video.play();
    if ('BarcodeDetector' in window) {
      try {
        const formats = await window.BarcodeDetector.getSupportedFormats();
        if (formats.includes('qr_code')) this.detector = new window.BarcodeDetector({ formats: ['qr_code'] });
      } catch { this.detector = null; }
    }
    if (!this.detector && typeof window.jsQR !== 'function') throw new CameraUnavailable('no-decoder');
    this.tick();
  }

  engine() {
    return this.detector ? 'BarcodeDetector' : 'jsQR';
  }

  async decode() {
    const v = this.video;
    if (!v.videoWidth) return null;
    if (this.detector) {
      const codes = await this.detector.detect(v);
      return codes.length ? codes[0].rawValue : null;
    }
    const scale = Math.min(1, MAX_WIDTH / v.videoWidth);
    const w = Math.round(v.videoWidth * scale);
    const hgt = Math.round(v.videoHeight * scale);
    this.canvas.width = w;
    this.canvas.height = hgt;
    const g = this.canvas.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0, w, hgt);
    const code = window.jsQR(g.getImageData(0, 0, w, hgt).data, w, hgt, { inversionAttempts: 'attemptBoth' });
    return code ? code.data : null;
  }

  tick() {
    this.timer = window.setTimeout(async () => {
      if (!this.stream) return;
      let found = null;
      try { found = await this.decode(); } catch { found = null; }
      if (found) {
        this.stop();
        this.onCode(found);
      } else {
        this.tick();
      }
    }, FRAME_MS);
  }

  stop() {
    window.clearTimeout(this.timer);
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.video.srcObject = null;
  }
}
