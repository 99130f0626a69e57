"""Parameter counts computed by hand from the papers' tables, shared by the model tests."""

# [AW] Table 7: (convs, filters) per block.
VGG_TABLE = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def vgg_conv_params():
    total, cin = 0, 3
    for convs, filters in VGG_TABLE:
        for _ in range(convs):
            total += (3 * 3 * cin + 1) * filters  # kernel + bias
            cin = filters
    return total


def resnet50_params():
    """keras-vggface ResNet-50: no conv biases, 4 batch-norm values per channel."""
    bn = 4
    total = 7 * 7 * 3 * 64 + bn * 64
    cin = 64
    for blocks, (a, b, c) in ((3, (64, 64, 256)), (4, (128, 128, 512)), (6, (256, 256, 1024)),
                              (3, (512, 512, 2048))):
        for block in range(blocks):
            total += cin * a + bn * a + 9 * a * b + bn * b + b * c + bn * c
            if block == 0:
                total += cin * c + bn * c  # projection shortcut
            cin = c
    return total


def cnn_m_params():
    """[AW] Table 4: conv kernels + biases, batch norm (4 per channel)."""
    layers = ((7, 3, 96), (5, 96, 256), (3, 256, 512), (3, 512, 512), (3, 512, 512))
    return sum(k * k * cin * cout + cout + 4 * cout for k, cin, cout in layers)


LANDMARKS = 136  # 68 (x, y) values, [AW] scenario 2
VGG_POOL5 = 3 * 3 * 512  # flattened pool5 at 96x96
RESNET_POOLED = 2048
DENSENET_POOLED = 1024


def densenet121_params(growth=32, blocks=(6, 12, 24, 16), bottleneck=128):
    """DenseNet-121 (Huang et al., the ImageNet network [AW2] and [MC] use) without its top:
    no conv biases, 4 batch-norm values per channel (2 trainable) as in `resnet50_params`.
    Stem conv 7x7 (3 -> 64) + BN; each dense layer BN-ReLU-conv 1x1 (c -> 128)-BN-ReLU-conv 3x3
    (128 -> 32), its output concatenated (c += 32); a transition BN-ReLU-conv 1x1 (c -> c/2)-avgpool
    between blocks; a final BN."""
    bn = 4
    total = 7 * 7 * 3 * 64 + bn * 64
    channels = 64
    for index, layers in enumerate(blocks):
        for _ in range(layers):
            total += bn * channels + channels * bottleneck + bn * bottleneck + 3 * 3 * bottleneck * growth
            channels += growth
        if index < len(blocks) - 1:
            total += bn * channels + channels * (channels // 2)
            channels //= 2
    assert channels == DENSENET_POOLED
    return total + bn * channels


DENSENET_CONV = densenet121_params()


def dense(n_in, n_out):
    return n_in * n_out + n_out


FRAME_EXPECTED = {
    # [AW] Table 4: pool5 3x3x512 -> fc 4096 -> 2.
    "cnn_m": cnn_m_params() + dense(VGG_POOL5, 4096) + dense(4096, 2),
    # [AW] Table 7: pool5 ++ landmarks -> 4096 -> 2048 -> 2.
    "vggface_cnn": vgg_conv_params() + dense(VGG_POOL5 + LANDMARKS, 4096) + dense(4096, 2048) + dense(2048, 2),
    "vgg16_cnn": vgg_conv_params() + dense(VGG_POOL5 + LANDMARKS, 4096) + dense(4096, 2048) + dense(2048, 2),
    "vggface_4096x2000x2": vgg_conv_params() + dense(VGG_POOL5, 4096) + dense(4096, 2000) + dense(2000, 2),
    "vggface_4096x4096x2": vgg_conv_params() + dense(VGG_POOL5, 4096) + dense(4096, 4096) + dense(4096, 2),
    # [AW] 4.2.1.1: pooled ResNet ++ landmarks -> 1500 -> 256 -> 2.
    "resnet50_cnn": resnet50_params() + dense(RESNET_POOLED + LANDMARKS, 1500) + dense(1500, 256) + dense(256, 2),
    # [MC] 5.1: pooled DenseNet ++ landmarks -> 1500 -> 2.
    "densenet121_cnn": DENSENET_CONV + dense(DENSENET_POOLED + LANDMARKS, 1500) + dense(1500, 2),
}


def tf1_gru(n_in, units=128):
    """TF1 GRUCell: gates [in+u, 2u] + 2u, candidate [in+u, u] + u."""
    return 3 * units * (n_in + units) + 3 * units


def gru_stack(n_in, units=128, layers=2):
    return tf1_gru(n_in, units) + (layers - 1) * tf1_gru(units, units)


def tf1_attention_gru_stack(n_in, units=128, layers=2):
    """TF1 AttentionCellWrapper(MultiRNNCell([GRUCell(u)] * layers)), attn_size = attn_vec_size = u:
    input projection [in + u -> in], the cells, attention 1x1 conv k [u, u], v [u],
    query projection [layers * u -> u], output projection [2u -> u]."""
    return (dense(n_in + units, n_in) + gru_stack(n_in, units, layers) + units * units + units
            + dense(layers * units, units) + dense(2 * units, units))


OUT = dense(128, 2)
SEQUENCE_EXPECTED = {
    # [AW] Table 8: pool5 ++ landmarks -> fc1 4096 -> GRU 128 -> GRU 128 -> 2.
    "affwildnet_vggface": vgg_conv_params() + dense(VGG_POOL5 + LANDMARKS, 4096) + gru_stack(4096) + OUT,
    "affwildnet_resnet50": resnet50_params() + dense(RESNET_POOLED + LANDMARKS, 1500) + gru_stack(1500) + OUT,
    "densenet121_rnn": DENSENET_CONV + dense(DENSENET_POOLED + LANDMARKS, 1500) + gru_stack(1500) + OUT,
    "affwildnet_vggface_gru_released": vgg_conv_params() + dense(VGG_POOL5, 4096) + gru_stack(4096) + OUT,
    # [AW2]: VGGFACE1 fc1 feeds the RNN; ResNet/DenseNet pooled features feed it directly.
    "vggface_gru": vgg_conv_params() + dense(VGG_POOL5, 4096) + gru_stack(4096) + OUT,
    "resnet50_gru": resnet50_params() + gru_stack(RESNET_POOLED) + OUT,
    "densenet121_gru": DENSENET_CONV + gru_stack(DENSENET_POOLED) + OUT,
    "vggface_gru_attention": vgg_conv_params() + dense(VGG_POOL5, 4096) + tf1_attention_gru_stack(4096) + OUT,
    "resnet50_gru_attention": resnet50_params() + tf1_attention_gru_stack(RESNET_POOLED) + OUT,
    "densenet121_gru_attention": DENSENET_CONV + tf1_attention_gru_stack(DENSENET_POOLED) + OUT,
}
# [code] affwildnet/resnet-gru: slim resnet_v1_50 (the same conv and batch-norm
# shapes as ResNet-50), pooled, straight into 2 x GRU(128) -> 2.
RELEASED_RESNET_GRU = resnet50_params() + gru_stack(RESNET_POOLED) + OUT
