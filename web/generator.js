// The DCGAN generator in TensorFlow.js ops, run from the raw weights that web/export.py writes
// (model.json: shapes and byte offsets; weights.bin: float16 or float32, little-endian, Keras layouts).
'use strict';

const NFGenerator = (() => {
  const BN_EPSILON = 1e-5;  // ops.BN_EPSILON in the Python model

  // float16 bit pattern -> float32, for all 65536 patterns (decoding is then one lookup per weight).
  let halfTable = null;
  function halfToFloatTable() {
    if (halfTable) return halfTable;
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
      if (exp === 0) halfTable[h] = sign * frac * Math.pow(2, -24);
      else if (exp === 31) halfTable[h] = frac ? NaN : sign * Infinity;
      else halfTable[h] = sign * (1 + frac / 1024) * Math.pow(2, exp - 15);
    }
    return halfTable;
  }

  const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

  function decode(buffer, entry, dtype) {
    const n = entry.length, out = new Float32Array(n);
    if (dtype === 'float32') {
      if (littleEndian) {
        out.set(new Float32Array(buffer, entry.offset, n));
      } else {
        const dv = new DataView(buffer);
        for (let i = 0; i < n; i++) out[i] = dv.getFloat32(entry.offset + 4 * i, true);
      }
    } else if (dtype === 'float16') {
      const table = halfToFloatTable();
      if (littleEndian) {
        const u = new Uint16Array(buffer, entry.offset, n);
        for (let i = 0; i < n; i++) out[i] = table[u[i]];
      } else {
        const dv = new DataView(buffer);
        for (let i = 0; i < n; i++) out[i] = table[dv.getUint16(entry.offset + 2 * i, true)];
      }
    } else {
      throw new Error(`unsupported weights dtype ${dtype}`);
    }
    return out;
  }

  // A stride-2, 5x5, 'same' transposed convolution as ONE stride-1 3x3 convolution with 4x the output channels
  // followed by depthToSpace(2): output pixel (2m+a, 2n+b) only sees kernel taps of one parity, so each of the
  // four phases (a, b) is an ordinary 3x3 convolution of the input. Regular convolutions are much faster than
  // conv2dTranspose in TF.js (XNNPACK on wasm). pad = TF's 'same' top padding of the forward convolution.
  function phaseKernel(kernel, shape, padH, padW) {
    const [K, KW, cout, cin] = shape;  // Keras Conv2DTranspose layout: (kh, kw, out, in)
    const out = new Float32Array(9 * cin * 4 * cout);
    for (let th = 0; th < 3; th++) for (let ah = 0; ah < 2; ah++) {
      const kh = ah + padH - 2 * th + 2;
      if (kh < 0 || kh >= K) continue;
      for (let tw = 0; tw < 3; tw++) for (let aw = 0; aw < 2; aw++) {
        const kw = aw + padW - 2 * tw + 2;
        if (kw < 0 || kw >= KW) continue;
        const phase = (ah * 2 + aw) * cout;
        for (let co = 0; co < cout; co++) {
          const src = ((kh * KW + kw) * cout + co) * cin;
          for (let ci = 0; ci < cin; ci++) out[((th * 3 + tw) * cin + ci) * 4 * cout + phase + co] = kernel[src + ci];
        }
      }
    }
    return out;
  }

  // Load model.json + weights.bin from baseUrl; returns {manifest, cfg, run(z) -> tf.Tensor4D, impl}.
  // impl: 'phase' (default, regular convolutions) or 'transpose' (tf.conv2dTranspose, as the Keras layers).
  async function load(baseUrl = '', {impl = 'phase', onProgress = null} = {}) {
    const response = await fetch(baseUrl + 'model.json');
    if (!response.ok) throw new Error(`cannot load ${baseUrl}model.json: HTTP ${response.status}`);
    const manifest = await response.json();
    if (manifest.format !== 'neuralface-web-1') throw new Error(`model.json has unknown format ${manifest.format}`);
    if (onProgress) onProgress(manifest);
    const wresp = await fetch(baseUrl + 'weights.bin');
    if (!wresp.ok) throw new Error(`cannot load ${baseUrl}weights.bin: HTTP ${wresp.status}`);
    const buffer = await wresp.arrayBuffer();
    if (buffer.byteLength !== manifest.bytes) {
      throw new Error(`weights.bin has ${buffer.byteLength} bytes, model.json expects ${manifest.bytes}: export again`);
    }
    const cfg = manifest.model, sizes = manifest.sizes;
    const raw = {};
    for (const e of manifest.weights) raw[e.name] = {values: decode(buffer, e, manifest.dtype), shape: e.shape};
    const need = (name) => {
      if (!raw[name]) throw new Error(`model.json lacks the weight ${name}`);
      return raw[name];
    };
    const W = {}, layers = [];
    const t = (name) => { const r = need(name); return tf.tensor(r.values, r.shape, 'float32'); };
    W.lin = {kernel: t('g_h0_lin/kernel'), bias: t('g_h0_lin/bias')};
    for (let i = 1; i <= 4; i++) {
      const k = need(`g_h${i}/kernel`);
      const [inH, inW] = sizes[i - 1], [outH, outW] = sizes[i];
      const cout = k.shape[2];
      const layer = {outH, outW, cout, bias: t(`g_h${i}/bias`)};
      // TF's 'same' padding of the forward stride-2 convolution that this layer transposes (outH -> inH).
      const padTop = Math.floor(Math.max((inH - 1) * 2 + 5 - outH, 0) / 2);
      const padLeft = Math.floor(Math.max((inW - 1) * 2 + 5 - outW, 0) / 2);
      const phaseable = k.shape[0] === 5 && k.shape[1] === 5 && [1, 2].includes(padTop) && [1, 2].includes(padLeft);
      if (impl === 'phase' && phaseable) {
        layer.phase = tf.tensor(phaseKernel(k.values, k.shape, padTop, padLeft), [3, 3, k.shape[3], 4 * cout]);
      } else {
        layer.kernel = tf.tensor(k.values, k.shape);
      }
      if (i < 4) {
        layer.bn = {gamma: t(`g_bn${i}/gamma`), beta: t(`g_bn${i}/beta`),
                    mean: t(`g_bn${i}/moving_mean`), variance: t(`g_bn${i}/moving_variance`)};
      }
      layers.push(layer);
    }
    W.bn0 = {gamma: t('g_bn0/gamma'), beta: t('g_bn0/beta'),
             mean: t('g_bn0/moving_mean'), variance: t('g_bn0/moving_variance')};
    const [h16, w16] = sizes[0];
    const batchNorm = (x, bn) => tf.batchNorm(x, bn.mean, bn.variance, bn.beta, bn.gamma, BN_EPSILON);

    function deconv(x, layer) {
      const n = x.shape[0];
      let y;
      if (layer.phase) {
        y = tf.depthToSpace(tf.conv2d(x, layer.phase, 1, 'same'), 2);
        if (y.shape[1] !== layer.outH || y.shape[2] !== layer.outW) {
          y = tf.slice(y, [0, 0, 0, 0], [n, layer.outH, layer.outW, layer.cout]);
        }
      } else {
        y = tf.conv2dTranspose(x, layer.kernel, [n, layer.outH, layer.outW, layer.cout], 2, 'same');
      }
      return tf.add(y, layer.bias);
    }

    // z: Float32Array of n * z_dim values (or a 2-D tensor) -> images (n, H, W, c) in [-1, 1].
    function run(z) {
      return tf.tidy(() => {
        const zt = z instanceof tf.Tensor ? z : tf.tensor2d(z, [z.length / cfg.z_dim, cfg.z_dim]);
        const n = zt.shape[0];
        let x = tf.add(tf.matMul(zt, W.lin.kernel), W.lin.bias);
        x = tf.relu(batchNorm(tf.reshape(x, [n, h16, w16, cfg.gf_dim * 8]), W.bn0));
        for (const layer of layers.slice(0, 3)) x = tf.relu(batchNorm(deconv(x, layer), layer.bn));
        return tf.tanh(deconv(x, layers[3]));
      });
    }

    return {manifest, cfg, run, impl: layers.every((l) => l.phase) ? 'phase' : 'transpose'};
  }

  return {load};
})();
