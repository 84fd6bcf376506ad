"""Published weights of maskmodel (data only): `manifest.json`, model files and the model card."""
