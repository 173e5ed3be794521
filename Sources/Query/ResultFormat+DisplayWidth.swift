extension ResultFormat {
    /// The columns `text` takes on a terminal: two for each East Asian wide or fullwidth
    /// character and each emoji shown as a picture, one for any other character (a character
    /// with its combining marks is one `Character`). Tables pad by this, not by the count of
    /// characters, so their columns line up under CJK names.
    static func displayWidth(_ text: String) -> Int {
        text.reduce(0) { width, character in
            guard let first = character.unicodeScalars.first else { return width }
            return width + (isWide(first) ? 2 : 1)
        }
    }

    /// Whether `scalar` is East Asian Wide or Fullwidth (Unicode's EastAsianWidth.txt, its main
    /// blocks), or an emoji whose default presentation is a picture.
    static func isWide(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x1100...0x115F,  // Hangul Jamo initial consonants
            0x2E80...0x303E,  // CJK radicals, Kangxi, ideographic description, CJK symbols
            0x3041...0x33FF,  // Hiragana, Katakana, Bopomofo, Hangul compatibility, CJK compatibility
            0x3400...0x4DBF,  // CJK extension A
            0x4E00...0x9FFF,  // CJK unified ideographs
            0xA000...0xA4CF,  // Yi
            0xA960...0xA97F,  // Hangul Jamo extended A
            0xAC00...0xD7A3,  // Hangul syllables
            0xF900...0xFAFF,  // CJK compatibility ideographs
            0xFE10...0xFE19,  // vertical forms
            0xFE30...0xFE6F,  // CJK compatibility forms, small form variants
            0xFF00...0xFF60,  // fullwidth forms
            0xFFE0...0xFFE6,
            0x1B000...0x1B2FF,  // Kana supplement and extensions
            0x20000...0x2FFFD,  // CJK extensions B–F
            0x30000...0x3FFFD:  // CJK extension G and later
            return true
        default:
            return scalar.properties.isEmojiPresentation
        }
    }
}
