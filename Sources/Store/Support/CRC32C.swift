import CChecksum

/// CRC-32C (Castagnoli), the checksum of log entries and hard state: the CPU's CRC32 instruction
/// where it has one, else table-driven, slicing by 8.
public enum CRC32C {
    static let hardware = dwcp_crc32c_hardware_available() == 1

    private static let tables: [[UInt32]] = {
        var tables = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for n in 0..<256 {
            var crc = UInt32(n)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            tables[0][n] = crc
        }
        for n in 0..<256 {
            var crc = tables[0][n]
            for k in 1..<8 {
                crc = tables[0][Int(crc & 0xff)] ^ (crc >> 8)
                tables[k][n] = crc
            }
        }
        return tables
    }()

    /// Extends `crc` (start with 0) over `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        if hardware { return ~dwcp_crc32c_hardware(~crc, bytes.baseAddress, bytes.count) }
        return software(bytes, continuing: crc)
    }

    /// The portable version (also checked against the hardware one in the tests).
    public static func software(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var crc = ~crc
        var index = 0
        let count = bytes.count
        tables.withUnsafeBufferPointer { t in
            let t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4], t5 = t[5], t6 = t[6], t7 = t[7]
            while count - index >= 8 {
                let lo =
                    crc
                    ^ (UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8
                        | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24)
                crc =
                    t7[Int(lo & 0xff)] ^ t6[Int((lo >> 8) & 0xff)] ^ t5[Int((lo >> 16) & 0xff)]
                    ^ t4[Int(lo >> 24)] ^ t3[Int(bytes[index + 4])] ^ t2[Int(bytes[index + 5])]
                    ^ t1[Int(bytes[index + 6])] ^ t0[Int(bytes[index + 7])]
                index += 8
            }
            while index < count {
                crc = t0[Int((crc ^ UInt32(bytes[index])) & 0xff)] ^ (crc >> 8)
                index += 1
            }
        }
        return ~crc
    }

    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }
}
