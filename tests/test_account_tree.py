"""The account tree (:mod:`hub.config.tree`): roots, members in
configuration order, ancestors, and walks that stop at an unknown parent
or a loop (the raw tables ``hub check`` reads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import AccountTree, load_config
from hub.config.tree import inherited
from hub.host import build_host

TREE = {"child": "root", "root": None, "other": None, "grandchild": "child", "leaf": "other"}


def test_roots_members_and_ancestors_follow_configuration_order():
    tree = AccountTree(TREE)
    assert tree.roots() == ["root", "other"]
    # the root keeps its own place in the configuration's order
    assert tree.members("root") == ["child", "root", "grandchild"]
    assert tree.members("other") == ["other", "leaf"]
    assert tree.members("child") == [] and tree.members("nobody") == []
    assert tree.root_of("grandchild") == "root" and tree.root_of("root") == "root"
    assert tree.ancestors("grandchild") == ["child", "root"] and tree.ancestors("root") == []
    assert tree.parent("leaf") == "other" and tree.parent("other") is None
    with pytest.raises(KeyError):
        tree.root_of("nobody")


def test_members_is_a_copy():
    tree = AccountTree(TREE)
    tree.members("root").append("x")
    assert tree.members("root") == ["child", "root", "grandchild"]


def test_walks_stop_at_an_unknown_parent_and_at_a_loop():
    tree = AccountTree.from_tables([{"id": "a", "parent": "b"}, {"id": "b", "parent": "a"},
                                    {"id": "c", "parent": "ghost"}, {"id": "a", "parent": "c"}, {"name": "no id"}])
    assert len(tree) == 3 and "ghost" not in tree
    assert tree.ancestors("a") == ["b"] and tree.ancestors("c") == []
    assert tree.loop_through("a", "b") == ["a", "b", "a"]
    assert tree.loop_through("c", "ghost") is None


def test_inherited_takes_the_nearest_value_up_the_tree():
    tables = {"root": {"id": "root", "currency": "USD"}, "child": {"id": "child", "parent": "root"},
              "grandchild": {"id": "grandchild", "parent": "child", "currency": "CHF"}}
    tree = AccountTree.from_tables(tables.values())
    assert inherited(tables, tree, "child", "currency") == "USD"
    assert inherited(tables, tree, "grandchild", "currency") == "CHF"
    assert inherited(tables, tree, "child", "itemize") is None
    assert inherited(tables, tree, None, "currency") is None


def test_a_config_builds_its_tree_once(tmp_path: Path):
    (tmp_path / "hub.toml").write_text(
        '[hub]\ndatabase = "sqlite:///hub.db"\n'
        '[[accounts]]\nid = "kid"\nparent = "acme"\n'
        '[[accounts]]\nid = "acme"\n'
        '[[accounts]]\nid = "solo"\n'
    )
    config = load_config(tmp_path / "hub.toml", build_host([]))
    assert config.tree is config.tree
    assert config.tree.roots() == ["acme", "solo"]
    assert config.tree.members("acme") == ["kid", "acme"]
