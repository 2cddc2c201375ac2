from bench.report import write_section


def test_write_section_keeps_hand_written_history_below_the_new_table(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- bench:other:begin -->\n## Other\n\nuntouched\n<!-- bench:other:end -->\n\n"
                   "<!-- bench:suite:begin -->\n## Suite\n\nold table\n\n### pair A\n\nold A\n\n"
                   "### The same table at commit `abc`\n\nhistory\n\n#### detail\n\nmore history\n"
                   "<!-- bench:suite:end -->\n", encoding="utf-8")
    body = "new table\n\n### pair A\n\nnew A\n"
    write_section(doc, "suite", "Suite", body)
    text = doc.read_text(encoding="utf-8")
    assert "old table" not in text and "old A" not in text  # the script's own parts are replaced
    assert text.count("### pair A") == 1
    assert text.index("new table") < text.index("new A") < text.index("### The same table at commit `abc`")
    assert "history\n\n#### detail\n\nmore history" in text  # a kept subsection keeps its own subsections
    assert "untouched" in text
    write_section(doc, "suite", "Suite", body)
    assert doc.read_text(encoding="utf-8") == text  # rewriting the same body changes nothing


def test_write_section_appends_a_new_suite_at_the_end(tmp_path):
    doc = tmp_path / "benchmarks.md"
    write_section(doc, "first", "First", "table one")
    write_section(doc, "second", "Second", "table two")
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks") and text.index("table one") < text.index("table two")
