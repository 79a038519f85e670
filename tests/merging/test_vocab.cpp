// The registry and the vocabulary (merging/vocab.hpp) name the same methods:
// every registry entry is built from its vocabulary row (name, summary, kind,
// parameters) and every row has an entry that merges; aliases find their method.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "merging/registry.hpp"
#include "merging/vocab.hpp"

using namespace bm::merging;

TEST(MergeVocab, EveryRegistryEntryIsItsVocabularyRowAndViceVersa) {
  const auto& vocab = method_vocab();
  const auto& reg = merge_methods();
  ASSERT_EQ(reg.size(), vocab.size());
  for (size_t i = 0; i < vocab.size(); ++i) {
    SCOPED_TRACE(vocab[i].name);
    const MethodInfo& m = find_method(vocab[i].name);
    EXPECT_EQ(&m, &reg[i]);  // same order
    EXPECT_EQ(m.name, vocab[i].name);
    EXPECT_EQ(m.summary, vocab[i].summary);
    EXPECT_EQ(m.kind, vocab[i].kind);
    EXPECT_EQ(m.needs_route, vocab[i].needs_route);
    EXPECT_EQ(m.needs_route, m.kind != MethodKind::General);
    ASSERT_EQ(m.params.size(), vocab[i].params.size());
    for (size_t p = 0; p < m.params.size(); ++p) {
      EXPECT_EQ(m.params[p].name, vocab[i].params[p].name);
      EXPECT_EQ(m.params[p].default_value, vocab[i].params[p].default_value);
    }
    EXPECT_TRUE(static_cast<bool>(m.merge));
    EXPECT_FALSE(vocab[i].grid_kind.empty());
    for (auto& a : vocab[i].aliases) EXPECT_EQ(&find_method(a), &m) << a;
  }
  for (auto& m : reg) EXPECT_NE(find_method_vocab(m.name), nullptr) << m.name;
}

TEST(MergeVocab, AliasesAndDefaultsAsTheMethodsDocumentThem) {
  EXPECT_EQ(find_method("dare_linear").name, "dare");
  // resolve_params fills the vocabulary's defaults (DELLA: epsilon 0.15, rescale on; Breadcrumbs: gamma 0.01, off).
  auto P = resolve_params(find_method("della"), {}, {"a"});
  EXPECT_DOUBLE_EQ(P.f("epsilon"), 0.15);
  EXPECT_TRUE(P.b("rescale"));
  auto Q = resolve_params(find_method("breadcrumbs_ties"), {}, {"a"});
  EXPECT_DOUBLE_EQ(Q.f("gamma"), 0.01);
  EXPECT_FALSE(Q.b("rescale"));
  EXPECT_DOUBLE_EQ(resolve_params(find_method("onebit"), {}, {"a"}).f("density"), 1.0);
  EXPECT_THROW(method_info("no_such_method"), bm::Error);
  try {
    find_method("dare_linaer");
    FAIL();
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'dare_linear'"), std::string::npos) << e.what();
  }
}

TEST(MergeVocab, TheCliListsTheVocabulary) {
  const char* bin = std::getenv("BITMERGE_BIN");
  if (!bin || !bm::file_exists(bin)) GTEST_SKIP() << "bitmerge CLI not built (BITMERGE_BIN)";
  auto run = [&](const std::string& args) {
    std::string out;
    FILE* p = ::popen((std::string(bin) + " " + args + " 2>&1").c_str(), "r");
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    ::pclose(p);
    return out;
  };
  const std::string list = "\n" + run("merge --list-methods"), help = run("merge --help");
  for (auto& m : method_vocab()) {
    EXPECT_NE(list.find("\n" + m.name + ": " + m.summary), std::string::npos) << m.name << "\n" << list;
    EXPECT_NE(help.find(m.name), std::string::npos) << m.name;
  }
  EXPECT_NE(list.find("(also --method dare_linear)"), std::string::npos) << list;
  EXPECT_NE(list.find("  epsilon = 0.150000  [per expert]"), std::string::npos) << list;
}
