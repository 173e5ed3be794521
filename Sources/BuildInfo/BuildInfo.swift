/// What this binary was built from, embedded at build time by `Plugins/EmbedCommitPlugin`.
public enum BuildInfo {
    /// The release number.
    public static let release = "0.1.0"

    /// The first 12 hex digits of the git commit the package was built at; "unknown" when it was
    /// not built from a git checkout.
    public static var commit: String { embeddedCommit }

    /// The release and the commit, as `dwcp --version` and every member's status show them:
    /// during a rolling upgrade it tells builds apart.
    public static var version: String { "\(release)+\(commit)" }
}
