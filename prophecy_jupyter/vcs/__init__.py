"""Version control of pipelines at the level users think in: gems, properties and connections.

`pipeline_diff` says what changed between two versions of a pipeline document and
`pipeline_merge` combines two branches' edits of one; both are pure functions over documents,
so the git layer and the Studio share one notion of "what changed" and "what conflicts".
"""
