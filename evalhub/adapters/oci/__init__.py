"""OCI targets for published results: registries (registry.py) and image layout directories
(layout.py) behind one `OciStore` (store.py); the artifacts themselves are in artifact.py."""
