# Op tests of the CPU ops used by DA-V2 / VDA (linear, layernorm, groupnorm, attention,
# conv_transpose2d, permute, resize) against naive double-precision loops; nonfinite: NaN/inf
# through the activations (alone, fused into conv2d/linear; CPU and emulated device) against
# hand-derived PyTorch results. One executable per op.
foreach(op linear layernorm groupnorm attention conv_transpose2d permute resize nonfinite)
  dm_add_test(test_op_${op} SOURCES ops/test_ops_nn.c ARGS ${op} LABELS op TIMEOUT 120)
endforeach()
