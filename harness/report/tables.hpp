// The paper's tables from results.json: rows grouped (Finetuned /
// Compressed experts / Merging methods, or per expert for position tables),
// columns = benchmarks + Average, each cell "measured / paper", the best
// measured value per column marked (within `best_within` when set).
#pragma once
#include <string>

#include "harness/report/results.hpp"

namespace bm::report {

enum class Format { Markdown, Latex, Csv };
Format parse_format(const std::string& s);  // md | markdown | latex | tex | csv (throws naming --format)

std::string benchmark_label(const std::string& b);
std::string render_table(const ResultsView& v, Format f);
// Storage: bytes per variant, % of Routing's storage and performance, paper's claims.
std::string render_storage_table(const ResultsView& v, Format f);
// Router accuracy per benchmark for the routed variants ("" when none has one).
std::string render_router_table(const ResultsView& v, Format f);
// Whichever the experiment's `table` asks for (main/position/routing -> render_table, storage -> both).
std::string render_for_experiment(const ResultsView& v, Format f);

// Best measured row per benchmark ("average" included), by row name.
std::map<std::string, std::string> best_rows(const ResultsView& v);

}  // namespace bm::report
