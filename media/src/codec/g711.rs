//! G.711 µ-law and A-law, bit-exact with the ITU-T reference implementation (G.191 STL
//! `g711.c`): the reference algorithms below are evaluated at compile time into lookup tables,
//! so a sample costs one table read each way.

/// Encodes 16-bit linear PCM to µ-law, one octet per sample.
pub fn ulaw_encode(pcm: &[i16], out: &mut [u8]) {
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = ULAW_ENCODE[((s >> 2) as u16 & 0x3FFF) as usize];
    }
}

/// Decodes µ-law octets to 16-bit linear PCM.
pub fn ulaw_decode(codes: &[u8], out: &mut [i16]) {
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = ULAW_DECODE[c as usize];
    }
}

/// Encodes 16-bit linear PCM to A-law, one octet per sample.
pub fn alaw_encode(pcm: &[i16], out: &mut [u8]) {
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = ALAW_ENCODE[((s >> 3) as u16 & 0x1FFF) as usize];
    }
}

/// Decodes A-law octets to 16-bit linear PCM.
pub fn alaw_decode(codes: &[u8], out: &mut [i16]) {
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = ALAW_DECODE[c as usize];
    }
}

/// One sample, µ-law.
pub fn ulaw_from_linear(sample: i16) -> u8 {
    ULAW_ENCODE[((sample >> 2) as u16 & 0x3FFF) as usize]
}

/// One octet, µ-law.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// One sample, A-law.
pub fn alaw_from_linear(sample: i16) -> u8 {
    ALAW_ENCODE[((sample >> 3) as u16 & 0x1FFF) as usize]
}

/// One octet, A-law.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// Fills a decode table from a reference expander (`const fn` pointers cannot be called in
/// const context, so a macro stamps out one loop per law).
macro_rules! decode_table {
    ($expand:ident) => {{
        let mut table = [0i16; 256];
        let mut code = 0;
        while code < 256 {
            table[code] = $expand(code as u8);
            code += 1;
        }
        table
    }};
}

/// Fills an encode table: entry `i` holds the code for any 16-bit sample whose top bits
/// (`sample >> shift`, two's complement, masked to the table width) equal `i` — the reference
/// algorithms only read those bits.
macro_rules! encode_table {
    ($size:expr, $shift:expr, $compress:ident) => {{
        let mut table = [0u8; $size];
        let mut i = 0;
        while i < $size {
            // Sign-extend the index back to a sample with the low bits zero.
            let top = if i >= $size / 2 { i as i32 - $size as i32 } else { i as i32 };
            table[i] = $compress((top << $shift) as i16);
            i += 1;
        }
        table
    }};
}

/// µ-law octet → linear sample.
static ULAW_DECODE: [i16; 256] = decode_table!(ulaw_expand);
/// A-law octet → linear sample.
static ALAW_DECODE: [i16; 256] = decode_table!(alaw_expand);
/// µ-law encoding of every 14-bit magnitude class of a 16-bit sample (`sample >> 2`).
static ULAW_ENCODE: [u8; 1 << 14] = encode_table!(1 << 14, 2, ulaw_compress);
/// A-law encoding of every 13-bit class of a 16-bit sample (`sample >> 3`).
static ALAW_ENCODE: [u8; 1 << 13] = encode_table!(1 << 13, 3, alaw_compress);

/// G.191 `ulaw_compress` for one sample.
const fn ulaw_compress(sample: i16) -> u8 {
    let mut absno: i32 = if sample < 0 { ((!sample) as i32 >> 2) + 33 } else { (sample as i32 >> 2) + 33 };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high_nibble = 0x0008 - segno;
    let low_nibble = 0x000F - ((absno >> segno) & 0x000F);
    let mut code = (high_nibble << 4) | low_nibble;
    if sample >= 0 {
        code |= 0x0080;
    }
    code as u8
}

/// G.191 `ulaw_expand` for one octet.
const fn ulaw_expand(code: u8) -> i16 {
    let sign: i32 = if code < 0x80 { -1 } else { 1 };
    let inverted = !(code as i32);
    let exponent = (inverted >> 4) & 0x07;
    let segment = exponent + 1;
    let mantissa = inverted & 0x0F;
    let step = 4 << segment;
    (sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

/// G.191 `alaw_compress` for one sample.
const fn alaw_compress(sample: i16) -> u8 {
    let mut ix: i32 = if sample < 0 { (!sample) as i32 >> 4 } else { sample as i32 >> 4 };
    if ix > 15 {
        let mut exponent = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            exponent += 1;
        }
        ix -= 16;
        ix += exponent << 4;
    }
    if sample >= 0 {
        ix |= 0x0080;
    }
    (ix ^ 0x0055) as u8
}

/// G.191 `alaw_expand` for one octet.
const fn alaw_expand(code: u8) -> i16 {
    let ix = (code as i32 ^ 0x0055) & 0x007F;
    let exponent = ix >> 4;
    let mut mantissa = ix & 0x000F;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 0x0008;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    (if code > 127 { mantissa } else { -mantissa }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// G.711 Table 2a, µ-law: decoder output (16-bit scale) of the first 16 codes and of the
    /// codes around zero.
    const ULAW_REFERENCE: [(u8, i16); 20] = [
        (0x00, -32124),
        (0x01, -31100),
        (0x02, -30076),
        (0x03, -29052),
        (0x04, -28028),
        (0x05, -27004),
        (0x06, -25980),
        (0x07, -24956),
        (0x08, -23932),
        (0x09, -22908),
        (0x0A, -21884),
        (0x0B, -20860),
        (0x0C, -19836),
        (0x0D, -18812),
        (0x0E, -17788),
        (0x0F, -16764),
        (0x7E, -8),
        (0x7F, 0),
        (0xFE, 8),
        (0x80, 32124),
    ];

    /// G.711 Table 1a, A-law: decoder output (16-bit scale) at segment ends and around zero.
    const ALAW_REFERENCE: [(u8, i16); 8] =
        [(0xD5, 8), (0x55, -8), (0xD4, 24), (0xAA, 32256), (0x2A, -32256), (0xC5, 264), (0xF5, 528), (0x80, 5504)];

    #[test]
    fn decoders_match_the_itu_tables() {
        for (code, value) in ULAW_REFERENCE {
            assert_eq!(ulaw_to_linear(code), value, "µ-law {code:#04x}");
        }
        for (code, value) in ALAW_REFERENCE {
            assert_eq!(alaw_to_linear(code), value, "A-law {code:#04x}");
        }
    }

    #[test]
    fn tables_equal_the_reference_algorithms_for_every_sample() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_from_linear(sample), ulaw_compress(sample), "µ-law {sample}");
            assert_eq!(alaw_from_linear(sample), alaw_compress(sample), "A-law {sample}");
        }
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for code in 0..=255u8 {
            // µ-law has two zeros (0x7F is "negative zero"); the encoder writes 0xFF.
            let expected_ulaw = if code == 0x7F { 0xFF } else { code };
            assert_eq!(ulaw_from_linear(ulaw_to_linear(code)), expected_ulaw, "µ-law {code:#04x}");
            assert_eq!(alaw_from_linear(alaw_to_linear(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn quantisation_error_stays_within_half_a_step() {
        for sample in (i16::MIN..=i16::MAX).step_by(7) {
            let u = ulaw_to_linear(ulaw_from_linear(sample)) as i32;
            let a = alaw_to_linear(alaw_from_linear(sample)) as i32;
            let s = sample as i32;
            // Largest steps: 1024 (µ-law top segment, clipped above 32124) and 1024 (A-law).
            assert!((u - s).abs() <= 1024 || s.abs() > 32124, "µ-law {sample} → {u}");
            assert!((a - s).abs() <= 1024 || s.abs() > 32256, "A-law {sample} → {a}");
        }
    }

    #[test]
    fn slices_convert_in_place_of_samples() {
        let pcm = [0i16, 1000, -1000, 32767, -32768];
        let mut codes = [0u8; 5];
        let mut back = [0i16; 5];
        ulaw_encode(&pcm, &mut codes);
        ulaw_decode(&codes, &mut back);
        assert_eq!(codes, [0xFF, 0xCE, 0x4E, 0x80, 0x00]);
        alaw_encode(&pcm, &mut codes);
        alaw_decode(&codes, &mut back);
        assert_eq!(back[0], 8);
        assert_eq!(codes[3], 0xAA);
    }
}
