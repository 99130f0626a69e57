"""Pre-trained weights and weight transfer, mapped onto affnet models by layer name.

  transfer        resolve a weight source, copy by layer name (every initialisation)
  tf1_checkpoint  the released AffWildNet / VGG-Face CNN TF1 checkpoints (`load_tf1_checkpoint`)
  keras_h5        backbone weights from keras-vggface / Keras ImageNet .h5 files (`load_keras_h5`)
  convert         build + load + save (`convert.convert`, the CLI `python -m affnet.weights.convert`)

Import the module you need: this package imports none of them, so that `transfer` (used
by the models) does not pull in `convert` (which builds models).
Where each file comes from and its terms: checkpoints/README.md.
"""
