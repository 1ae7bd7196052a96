"""Graph export (GraphML, node-link JSON, DOT) and the ``explore`` command: whole-graph runs with
their stuck-state findings and report, graph files, the neighbourhood of a trace, refusals."""
from __future__ import annotations

import json

import networkx as nx
import pytest

from model.catalog import CATALOG
from model.machine import Model
from properties.cli import main
from properties.engines.explicit import Budget, GraphTooLarge, explore
from properties.report.graph_export import LIMITS, format_for, to_dot, write_graph
from properties.scenarios.itf import write_itf
from properties.trace import replay


@pytest.fixture(scope="module")
def small_space():
    return explore(Model(CATALOG["i915"], "tiny"), budget=Budget(depth=3))


def test_graphml_round_trip(tmp_path, small_space):
    path = tmp_path / "g.graphml"
    n, m = write_graph(small_space, path)
    g = nx.read_graphml(path)
    assert (n, m) == (g.number_of_nodes(), g.number_of_edges()) == (small_space.n_states, small_space.n_edges)
    d = g.nodes["0"]
    assert d["depth"] == 0 and d["life[0]"] == 0 and d["mem_ok[0][0]"] is True
    calls = {e["call"] for _, _, e in g.edges(data=True)}
    assert "dma_buf_export(buf=0)" in calls
    assert g.graph["complete"] is False and g.graph["exporter"] == "i915"


def test_node_link_json_round_trip(tmp_path, small_space):
    path = tmp_path / "g.json"
    write_graph(small_space, path)
    g = nx.node_link_graph(json.loads(path.read_text()), edges="edges")
    assert g.number_of_edges() == small_space.n_edges
    u, v, e = next(iter(g.edges(data=True)))
    assert set(e) == {"action", "args", "call", "ret"} and isinstance(e["ret"], int)


def test_dot_text(tmp_path, small_space):
    path = tmp_path / "g.dot"
    write_graph(small_space, path, marks={0: {"on_trace": True, "trace_index": 0}})
    text = path.read_text()
    assert text.startswith("digraph dmabuf {") and text.rstrip().endswith("}")
    assert text.count(" -> ") == small_space.n_edges
    assert 'label="0\\ndepth 0\\ntrace step 0"' in text
    assert "dma_buf_export(buf=0) = 0" in text


def test_limits_refuse_what_the_format_cannot_hold(tmp_path):
    space = explore(Model(CATALOG["i915"], "tiny"), budget=Budget(depth=6))
    assert space.n_edges > LIMITS["dot"]
    with pytest.raises(GraphTooLarge, match=r"--around TRACE --radius R"):
        write_graph(space, tmp_path / "big.dot")
    assert not (tmp_path / "big.dot").exists()
    write_graph(space, tmp_path / "big.graphml")       # well under GraphML's limit


def test_format_for():
    assert format_for("a/b.GraphML") == "graphml" and format_for("x.gv") == "dot"
    assert format_for("x.txt", "json") == "json"
    with pytest.raises(ValueError, match="suffix '.txt'"):
        format_for("x.txt")


def test_to_dot_quotes_labels():
    g = nx.DiGraph()
    g.add_edge(0, 1, call='f("x")', ret=-22)
    assert 'label="f(\\"x\\") = -EINVAL"' in to_dot(g)


# --- the explore command -----------------------------------------------------------------------

def _policy_file(tmp_path):
    """omapdrm with kmap stubs that return NULL: its whole tiny graph takes seconds. (Without
    kmap or mmap the v4.11 dma_buf_export() refuses it, corpus §3.5: nothing to explore.)"""
    path = tmp_path / "omap-lite.toml"
    path.write_text('name = "omap-lite"\nbased_on = "omapdrm"\nbreaks = ["BEGIN-ERRORS", "KCPU-ALWAYS-SUCCEED", "FIXME-NO-USER-PIN"]\n'
                    "[knobs]\nkmap_returns_null = true\n")
    return path


def test_explore_whole_tiny_graph_with_stuck_states_and_report(tmp_path, capsys):
    report = tmp_path / "r.json"
    graph = tmp_path / "g.dot"
    rc = main(["explore", "--exporter", str(_policy_file(tmp_path)), "--scope", "tiny",
               "--json", str(report), "--graph", str(graph)])
    out = capsys.readouterr()
    # the results are printed and written; the graph (more than 5000 edges) is refused as DOT
    assert rc == 2 and not graph.exists()
    assert out.err.strip().splitlines()[-1].startswith(f"explore: --graph {graph}: the state graph has 10945 states")
    data = json.loads(report.read_text())
    (space,) = data["state_spaces"]
    assert space["states"] == 10945 and space["complete"] is True
    assert data["command"] == "explore" and data["results"][0]["engine"] == "explicit"
    assert all(r["evidence"]["states"] == 10945 for r in data["results"])
    assert [s["goal"] for s in data["stuck"]] == ["unpin[0]"]
    assert data["stuck"][0]["trace"][-1]["action"] == "dma_buf_put"
    assert "Stuck states" in out.out and "unpin[0]" in out.out
    assert data["mismatches"] == []


def test_explore_cut_short_is_not_as_expected(tmp_path, capsys):
    rc = main(["explore", "--exporter", "i915", "--max-states", "500"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "CUT SHORT" in out and "is unknown, expected holds" in out


def test_explore_around_a_trace(tmp_path, capsys):
    model = Model(CATALOG["omapdrm"], "tiny")
    trace = replay(model, [("dma_buf_export", {"buf": 0}), ("dma_buf_fd", {"buf": 0}),
                           ("ioctl_sync", {"fd": 0, "flags": 1})])
    itf = write_itf(tmp_path / "t.itf.json", model, trace)
    out_path = tmp_path / "n.json"
    rc = main(["explore", "--around", str(itf), "--radius", "1", "--graph", str(out_path)])
    assert rc == 0, capsys.readouterr().err
    g = nx.node_link_graph(json.loads(out_path.read_text()), edges="edges")
    on = sorted(d["trace_index"] for _, d in g.nodes(data=True) if d.get("on_trace"))
    assert on == [0, 1, 2, 3]
    assert max(d["depth"] for _, d in g.nodes(data=True)) == 1
    assert "radius 1" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--around", "t.itf.json"], "--around needs --graph"),
    (["--graph", "g.txt"], "cannot tell the graph format"),
    (["--graph", "g.dot", "--exporter", "i915", "--exporter", "omapdrm"], "name it with --exporter"),
    (["--exporter", "i915", "--max-states", "20000", "--graph", "g.dot"], "a dot file is useful up to 5000"),
    (["--scope", "huge"], "unknown scope 'huge'"),
])
def test_explore_bad_input_is_one_line_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["explore", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err.splitlines()[-1] and "Traceback" not in err   # (progress lines come first)
