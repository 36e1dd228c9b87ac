"""Account templates are tenant-supplied code: they render in child processes with a memory
limit, a time limit and an output limit, so one tenant's template never stalls a worker or
delays another tenant's email (see pool.py for the parent side, child.py for the child)."""
