extension Duration {
    /// Seconds to a tenth, as log lines give a wait or a silence: "0.4 s", "12.5 s".
    public var inTenthsOfSeconds: String {
        let tenths = components.seconds * 10 + components.attoseconds / 100_000_000_000_000_000
        return "\(tenths / 10).\(tenths % 10) s"
    }
}
