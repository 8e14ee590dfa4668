# Op tests of the CPU ops used by DA-V2 / VDA (linear, layernorm, groupnorm, attention,
# conv_transpose2d, permute, resize) against naive double-precision loops. One executable per op.
foreach(op linear layernorm groupnorm attention conv_transpose2d permute resize)
  dm_add_test(test_op_${op} SOURCES ops/test_ops_nn.c ARGS ${op} LABELS op TIMEOUT 120)
endforeach()
