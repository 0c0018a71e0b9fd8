#if canImport(Glibc)
import Glibc
#endif

/// The sound card of the second model, at four times the sample rate until it decimates.
enum SoundCard {
    /// `voltage`: the head's output scaled so the median pulse peak is 1.
    static func capture(_ voltage: [Double], swipe: PhysicalSwipe, fineRate: Double, random: inout PCG) -> [Float] {
        var x = voltage
        let noise = pow(10, -swipe.snr / 20)
        // Input noise and hum, at the head (they go through everything the pulses go through).
        for i in x.indices { x[i] += noise * random.gaussian() }
        if let hum = swipe.hum {
            let amplitude = pow(10, hum.level / 20)
            let phase = 2 * Double.pi * random.uniform()
            for i in x.indices {
                let w = 2 * Double.pi * hum.frequency * Double(i) / fineRate + phase
                x[i] += amplitude * (sin(w) + 0.3 * sin(3 * w) + 0.1 * sin(5 * w))
            }
        }
        // The AC coupling: one capacitor, a first-order high-pass.
        let rc = 1 / (2 * Double.pi * swipe.coupling)
        let alpha = rc / (rc + 1 / fineRate)
        var previousIn = x.first ?? 0, previousOut = 0.0
        for i in x.indices {
            let input = x[i]
            let out = alpha * (previousOut + input - previousIn)
            previousIn = input
            previousOut = out
            x[i] = out
        }
        // The preamplifier: the median pulse peak at `drive` dB of full scale.
        let gain = pow(10, swipe.drive / 20)
        // An AGC that follows the envelope: it takes up to `depth` dB off while the swipe is
        // loud (attack), and gives it back slowly (release): the gain pumps with the swipe.
        var envelope = 0.0, reduction = 0.0
        let attack = swipe.agc.map { exp(-1 / ($0.attack * fineRate)) } ?? 0
        let release = swipe.agc.map { exp(-1 / ($0.release * fineRate)) } ?? 0
        let depth = swipe.agc?.depth ?? 0
        for i in x.indices {
            var y = x[i] * gain
            if swipe.agc != nil {
                let level = abs(y)
                envelope = level > envelope ? attack * envelope + (1 - attack) * level : release * envelope + (1 - release) * level
                // Full reduction once the envelope reaches a third of the pulses' own peak.
                let target = depth * min(1, envelope / (gain / 3))
                reduction = target > reduction ? attack * reduction + (1 - attack) * target : release * reduction + (1 - release) * target
                y *= pow(10, -reduction / 20)
            }
            // The converter's input stage saturates at full scale.
            x[i] = max(-1, min(1, y))
        }
        // Anti-alias low-pass (windowed sinc, cut-off 0.45 of the output rate) and decimation.
        let factor = PhysicalRenderer.oversampling
        let taps = lowPass(cutoff: 0.45 / Double(factor), length: 16 * factor + 1)
        let half = taps.count / 2
        let count = x.count / factor
        var out = [Float](repeating: 0, count: count)
        for j in 0..<count {
            let centre = j * factor
            var sum = 0.0
            for k in 0..<taps.count {
                let i = centre + k - half
                if i >= 0 && i < x.count { sum += taps[k] * x[i] }
            }
            // 16-bit steps, within full scale.
            let clamped = max(-1, min(32_767.0 / 32_768, sum))
            out[j] = Float((clamped * 32_768).rounded() / 32_768)
        }
        return out
    }

    /// A Blackman-windowed sinc low-pass, `cutoff` in cycles per sample, unit gain at DC.
    static func lowPass(cutoff: Double, length: Int) -> [Double] {
        let m = Double(length - 1)
        var taps = (0..<length).map { n -> Double in
            let t = Double(n) - m / 2
            let sinc = t == 0 ? 2 * cutoff : sin(2 * Double.pi * cutoff * t) / (Double.pi * t)
            let window = 0.42 - 0.5 * cos(2 * Double.pi * Double(n) / m) + 0.08 * cos(4 * Double.pi * Double(n) / m)
            return sinc * window
        }
        let sum = taps.reduce(0, +)
        for k in taps.indices { taps[k] /= sum }
        return taps
    }
}
