//! JSON written exactly like Python's `json.dumps(obj, sort_keys=True, ensure_ascii=True)`.
