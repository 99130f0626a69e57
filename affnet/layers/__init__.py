"""Keras layers shared by the affnet model families."""

from affnet.layers.attention import TF1AttentionCellWrapper
from affnet.layers.indrnn import AbsClip, IndRNNCell
from affnet.layers.peephole_lstm import PeepholeLSTMCell
from affnet.layers.recurrent import InputProjectedRNN, OutputDropoutCell, build_rnn_stack, tf1_weight_names
from affnet.layers.sequence import FoldTime, UnfoldTime
from affnet.layers.tf1_gru import TF1GRUCell

__all__ = [
    "AbsClip",
    "FoldTime",
    "IndRNNCell",
    "InputProjectedRNN",
    "OutputDropoutCell",
    "PeepholeLSTMCell",
    "TF1AttentionCellWrapper",
    "TF1GRUCell",
    "UnfoldTime",
    "build_rnn_stack",
    "tf1_weight_names",
]
