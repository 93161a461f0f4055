"""$lookup, $graphLookup, $unionWith and $facet over in-memory collections."""
from __future__ import annotations

from mongolake.query.aggregate import InMemoryPipelineContext

from tests.query.aggregate._util import fails, run

ORDERS = [{"_id": 1, "item": "almonds", "price": 12, "quantity": 2},
          {"_id": 2, "item": "pecans", "price": 20, "quantity": 1},
          {"_id": 3}]
INVENTORY = [{"_id": 1, "sku": "almonds", "description": "product 1", "instock": 120},
             {"_id": 2, "sku": "bread", "description": "product 2", "instock": 80},
             {"_id": 3, "sku": "cashews", "description": "product 3", "instock": 60},
             {"_id": 4, "sku": "pecans", "description": "product 4", "instock": 70},
             {"_id": 5, "sku": None, "description": "Incomplete"},
             {"_id": 6}]


def _ctx(**colls):
    return InMemoryPipelineContext({k: v for k, v in colls.items()})


def test_lookup_equality():
    ctx = _ctx(inventory=INVENTORY)
    out = run([{"$lookup": {"from": "inventory", "localField": "item", "foreignField": "sku",
                            "as": "inventory_docs"}}], ORDERS, ctx)
    assert [d["_id"] for d in out[0]["inventory_docs"]] == [1]
    assert [d["_id"] for d in out[1]["inventory_docs"]] == [4]
    # a missing localField matches null and missing foreign fields
    assert [d["_id"] for d in out[2]["inventory_docs"]] == [5, 6]


def test_lookup_array_local_field_and_nested_as():
    classes = [{"_id": 1, "title": "Reading is ...", "enrollmentlist": ["giraffe2", "pandabear", "artie"]},
               {"_id": 2, "title": "But Writing ...", "enrollmentlist": ["giraffe1", "artie"]}]
    members = [{"_id": 1, "name": "artie"}, {"_id": 2, "name": "giraffe"}, {"_id": 3, "name": "giraffe1"},
               {"_id": 4, "name": "giraffe2"}, {"_id": 5, "name": "pandabear"}]
    out = run([{"$lookup": {"from": "members", "localField": "enrollmentlist", "foreignField": "name",
                            "as": "x.enrollee_info"}}], classes, _ctx(members=members))
    assert sorted(d["name"] for d in out[0]["x"]["enrollee_info"]) == ["artie", "giraffe2", "pandabear"]
    assert sorted(d["name"] for d in out[1]["x"]["enrollee_info"]) == ["artie", "giraffe1"]
    # foreign arrays match by element
    out = run([{"$lookup": {"from": "f", "localField": "k", "foreignField": "ks", "as": "m"}}],
              [{"k": 2}], _ctx(f=[{"_id": 1, "ks": [1, 2]}, {"_id": 2, "ks": [3]}]))
    assert [d["_id"] for d in out[0]["m"]] == [1]


def test_lookup_pipeline_with_let():
    orders = [{"_id": 1, "item": "almonds", "price": 12, "ordered": 2},
              {"_id": 2, "item": "pecans", "price": 20, "ordered": 1},
              {"_id": 3, "item": "cookies", "price": 10, "ordered": 60}]
    warehouses = [{"_id": 1, "stock_item": "almonds", "warehouse": "A", "instock": 120},
                  {"_id": 2, "stock_item": "pecans", "warehouse": "A", "instock": 80},
                  {"_id": 3, "stock_item": "almonds", "warehouse": "B", "instock": 60},
                  {"_id": 4, "stock_item": "cookies", "warehouse": "B", "instock": 40},
                  {"_id": 5, "stock_item": "cookies", "warehouse": "A", "instock": 80}]
    pipeline = [{"$lookup": {"from": "warehouses", "let": {"order_item": "$item", "order_qty": "$ordered"},
                             "pipeline": [{"$match": {"$expr": {"$and": [
                                 {"$eq": ["$stock_item", "$$order_item"]},
                                 {"$gte": ["$instock", "$$order_qty"]}]}}},
                                 {"$project": {"stock_item": 0, "_id": 0}}],
                             "as": "stockdata"}}]
    out = run(pipeline, orders, _ctx(warehouses=warehouses), let_vars=[])
    assert out[0]["stockdata"] == [{"warehouse": "A", "instock": 120}, {"warehouse": "B", "instock": 60}]
    assert out[1]["stockdata"] == [{"warehouse": "A", "instock": 80}]
    assert out[2]["stockdata"] == [{"warehouse": "A", "instock": 80}]


def test_lookup_uncorrelated_runs_once_and_pushes_match_down():
    ctx = _ctx(holidays=[{"year": 2018, "name": "New Years"}, {"year": 2017, "name": "July 4th"},
                         {"year": 2018, "name": "Pi Day"}])
    absences = [{"_id": 1, "student": "Ann"}, {"_id": 2, "student": "Zoe"}]
    out = run([{"$lookup": {"from": "holidays", "pipeline": [{"$match": {"year": 2018}},
                                                             {"$project": {"_id": 0, "name": 1}}],
                            "as": "holidays"}}], absences, ctx)
    assert out[0]["holidays"] == [{"name": "New Years"}, {"name": "Pi Day"}] == out[1]["holidays"]
    assert ctx.scans == 1


def test_lookup_combined_form_and_documents():
    ctx = _ctx(f=[{"k": 1, "v": 10}, {"k": 1, "v": 20}, {"k": 2, "v": 30}])
    out = run([{"$lookup": {"from": "f", "localField": "k", "foreignField": "k", "as": "m",
                            "pipeline": [{"$match": {"v": {"$gt": 10}}}, {"$project": {"_id": 0, "v": 1}}]}}],
              [{"k": 1}], ctx)
    assert out == [{"k": 1, "m": [{"v": 20}]}]
    out = run([{"$lookup": {"localField": "x", "foreignField": "x", "as": "m",
                            "pipeline": [{"$documents": [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]}]}}], [{"x": 2}])
    assert out == [{"x": 2, "m": [{"x": 2, "y": "b"}]}]


def test_lookup_errors():
    fails([{"$lookup": {"from": "f", "localField": "a", "as": "m"}}], 9)
    fails([{"$lookup": {"from": "f", "as": "m"}}], 9)
    fails([{"$lookup": {"from": "f", "localField": "a", "foreignField": "b"}}], 9)
    fails([{"$lookup": {"from": "f", "localField": "a", "foreignField": "b", "as": "m", "bogus": 1}}], 9)
    fails([{"$lookup": {"from": "f", "as": "m", "pipeline": [{"$match": {"$expr": "$$undefinedVar"}}]}}], 17276,
          let_vars=[])


def test_graph_lookup():
    employees = [{"_id": 1, "name": "Dev"}, {"_id": 2, "name": "Eliot", "reportsTo": "Dev"},
                 {"_id": 3, "name": "Ron", "reportsTo": "Eliot"}, {"_id": 4, "name": "Andrew", "reportsTo": "Eliot"},
                 {"_id": 5, "name": "Asya", "reportsTo": "Ron"}, {"_id": 6, "name": "Dan", "reportsTo": "Andrew"}]
    ctx = _ctx(employees=employees)
    out = run([{"$graphLookup": {"from": "employees", "startWith": "$reportsTo", "connectFromField": "reportsTo",
                                 "connectToField": "name", "as": "reportingHierarchy", "depthField": "depth"}}],
              employees, ctx)
    by_name = {d["name"]: d for d in out}
    assert [(h["name"], h["depth"]) for h in by_name["Dan"]["reportingHierarchy"]] == \
        [("Andrew", 0), ("Eliot", 1), ("Dev", 2)]
    assert by_name["Eliot"]["reportingHierarchy"] == [{"_id": 1, "name": "Dev", "depth": 0}]
    out = run([{"$graphLookup": {"from": "employees", "startWith": "$reportsTo", "connectFromField": "reportsTo",
                                 "connectToField": "name", "as": "h", "maxDepth": 0}}], employees[5:], ctx)
    assert [h["name"] for h in out[0]["h"]] == ["Andrew"]
    # cycles terminate
    cyc = [{"_id": 1, "n": "a", "next": "b"}, {"_id": 2, "n": "b", "next": "a"}]
    out = run([{"$graphLookup": {"from": "c", "startWith": "$next", "connectFromField": "next",
                                 "connectToField": "n", "as": "h"}}], cyc[:1], _ctx(c=cyc))
    assert sorted(h["_id"] for h in out[0]["h"]) == [1, 2]
    out = run([{"$graphLookup": {"from": "employees", "startWith": "$reportsTo", "connectFromField": "reportsTo",
                                 "connectToField": "name", "as": "h",
                                 "restrictSearchWithMatch": {"name": {"$ne": "Dev"}}}}], employees[5:], ctx)
    assert [h["name"] for h in out[0]["h"]] == ["Andrew", "Eliot"]
    fails([{"$graphLookup": {"from": "e", "startWith": 1, "connectFromField": "a", "connectToField": "b"}}], 40105)
    fails([{"$graphLookup": {"from": "e", "startWith": 1, "connectFromField": "a", "connectToField": "b",
                             "as": "h", "maxDepth": -1}}], 40101)


def test_union_with():
    ctx = _ctx(sales_2017=[{"store": "A", "q": 1}], sales_2018=[{"store": "B", "q": 2}, {"store": "A", "q": 3}])
    out = run([{"$set": {"_id": "$store"}}, {"$unionWith": {"coll": "sales_2018", "pipeline": [{"$set": {"_id": "$store"}}]}},
               {"$unionWith": "sales_2017"}], ctx.coll("sales_2017"), ctx)
    assert out == [{"store": "A", "q": 1, "_id": "A"}, {"store": "B", "q": 2, "_id": "B"},
                   {"store": "A", "q": 3, "_id": "A"}, {"store": "A", "q": 1}]
    out = run([{"$unionWith": {"pipeline": [{"$documents": [{"x": 1}]}]}}], [{"x": 0}])
    assert out == [{"x": 0}, {"x": 1}]
    fails([{"$unionWith": {"pipeline": []}}], 9)
    fails([{"$unionWith": {"coll": "a", "x": 1}}], 40415)


def test_facet():
    docs = [{"_id": i, "price": p, "tags": t} for i, p, t in
            [(1, 199, ["a", "b"]), (2, 280, ["b"]), (3, 76, ["a"]), (4, 167, ["c"])]]
    out = run([{"$facet": {
        "categorizedByTags": [{"$unwind": "$tags"}, {"$sortByCount": "$tags"}],
        "categorizedByPrice": [{"$match": {"price": {"$exists": 1}}},
                               {"$bucket": {"groupBy": "$price", "boundaries": [0, 150, 200, 300],
                                            "default": "Other", "output": {"count": {"$sum": 1}}}}],
        "n": [{"$count": "n"}]}}], docs)
    assert len(out) == 1
    facet = out[0]
    assert facet["categorizedByTags"][0] in ({"_id": "a", "count": 2}, {"_id": "b", "count": 2})
    assert facet["categorizedByPrice"] == [{"_id": 0, "count": 1}, {"_id": 150, "count": 2},
                                           {"_id": 200, "count": 1}]
    assert facet["n"] == [{"n": 4}]
    assert run([{"$facet": {"a": [{"$limit": 1}]}}], []) == [{"a": []}]
    fails([{"$facet": {}}], 40169)
    fails([{"$facet": {"a": 1}}], 40170)
    fails([{"$facet": {"a": [{"$facet": {"b": [{"$limit": 1}]}}]}}], 40600)
