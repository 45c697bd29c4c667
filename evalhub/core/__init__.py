"""The pure core: spec models, resolution, identities, plans, scores and their rendering.

Nothing here touches files, the network, the clock, the environment or an SDK: callers pass
values in. A test walks the imports to keep it that way.
"""
