# Sums `llvm-cov report` per module (Sources/<Module>/...): lines, missed lines, coverage.
# Used by `make coverage`.
$1 ~ /\.swift$/ {
    n = split($1, parts, "/")
    module = ""
    for (i = 1; i < n; i++) if (parts[i] == "Sources") { module = parts[i + 1]; break }
    if (module == "") module = (n > 1 ? parts[1] : "(top)")
    lines[module] += $8
    missed[module] += $9
    total += $8
    totalMissed += $9
}
END {
    printf "%-16s %8s %8s %8s\n", "module", "lines", "missed", "covered"
    for (m in lines) printf "%-16s %8d %8d %7.1f%%\n", m, lines[m], missed[m], 100 * (lines[m] - missed[m]) / lines[m]
    printf "%-16s %8d %8d %7.1f%%\n", "all", total, totalMissed, 100 * (total - totalMissed) / total
}
