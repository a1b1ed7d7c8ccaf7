//! The model against the seed, on Burn's CPU device.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use googlenet_web::architecture::Architecture;
use googlenet_web::model::{GoogLeNet, GoogLeNetConfig};

fn model() -> (GoogLeNet, Device) {
    let device = Device::flex();
    device.seed(7);
    (GoogLeNetConfig::new().init(&device), device)
}

#[test]
fn parameter_counts_match_the_seed_summary() {
    let (model, _) = model();
    assert_eq!(model.num_params(), common::TOTAL_PARAMS);
    assert_eq!(model.block_params(), common::BLOCK_PARAMS);
}

#[test]
fn block_outputs_match_the_seed_for_96x96() {
    let (model, device) = model();
    let input = Tensor::<4>::random(GoogLeNetConfig::new().input_shape(1), Distribution::Default, &device);
    let (logits, trace) = model.forward_traced(input);
    let outputs: Vec<Vec<usize>> = trace.blocks.iter().map(|block| block.output.clone()).collect();
    assert_eq!(outputs, common::block_outputs_96());
    assert_eq!(logits.dims(), [1, 10]);
    let names: Vec<&str> = trace.blocks.iter().map(|block| block.name).collect();
    assert_eq!(names, ["b1", "b2", "b3", "b4", "b5", "dense"]);
}

#[test]
fn every_inception_branch_and_concat_matches_the_seed_for_96x96() {
    let (model, device) = model();
    let (_, trace) = model.forward_traced(Tensor::random([1, 1, 96, 96], Distribution::Default, &device));
    let actual: Vec<_> = trace.inceptions().map(|block| (block.branches.clone(), block.concat)).collect();
    assert_eq!(actual, common::inception_shapes(|side| side));
}

#[test]
fn shapes_follow_keras_same_padding_at_other_input_sizes() {
    let (model, device) = model();
    // 'same' rounds up: 64 → b1 16 → b2 8 → b3 4 → b4 2; 100 → 25 → 13 → 7 → 4; 32 → 8 → 4 → 2 → 1.
    for (size, b1_side, b2_side, b4_side, b5_side) in [(64, 16, 8, 4, 2), (100, 25, 13, 7, 4), (32, 8, 4, 2, 1)] {
        let (logits, trace) = model.forward_traced(Tensor::random([2, 1, size, size], Distribution::Default, &device));
        assert_eq!(logits.dims(), [2, 10], "input {size}");
        assert_eq!(trace.block("b1").unwrap().output, [2, 64, b1_side, b1_side], "input {size}");
        assert_eq!(trace.block("b2").unwrap().output, [2, 192, b2_side, b2_side], "input {size}");
        let sides: Vec<usize> = trace.inceptions().map(|block| block.concat[2]).collect();
        let (b3, b4, b5) = (b2_side, b4_side, b5_side);
        assert_eq!(sides, [b3, b3, b4, b4, b4, b4, b4, b5, b5], "input {size}");
    }
}

#[test]
fn weights_are_glorot_uniform_and_biases_zero() {
    let (model, _) = model();
    let conv = &model.b1.convs[0].conv;
    // 7×7×1 in, 7×7×64 out: limit = sqrt(6 / (49 + 3136)).
    let limit = (6.0f32 / (49.0 + 3136.0)).sqrt();
    let weights = conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
    let max = weights.iter().fold(0.0f32, |m, w| m.max(w.abs()));
    assert!(max <= limit && max > 0.9 * limit, "max |w| {max}, Glorot limit {limit}");
    let bias = conv.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap();
    assert!(bias.iter().all(|&b| b == 0.0));
    let dense_bias = model.dense.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap();
    assert!(dense_bias.iter().all(|&b| b == 0.0));
}

#[test]
fn the_architecture_view_reads_shapes_and_params_from_the_model() {
    let (model, device) = model();
    let (view, logits) = Architecture::trace(&model, 1, 96, &device);
    assert_eq!(logits.dims(), [1, 10]);
    assert_eq!(view.total_params, common::TOTAL_PARAMS);
    assert_eq!(view.blocks.iter().map(|b| b.params).collect::<Vec<_>>(), common::BLOCK_PARAMS);
    let inceptions: Vec<_> = view.blocks.iter().flat_map(|b| &b.inceptions).collect();
    let names: Vec<&str> = inceptions.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, common::INCEPTIONS_96.map(|(name, _, _)| name));
    // 3a's branches: 1×1 64 = 192·64 + 64; 1×1 96 → 3×3 128; 1×1 16 → 5×5 32; pool → 1×1 32.
    let branch_params: Vec<usize> = inceptions[0].branches.iter().map(|b| b.params).collect();
    assert_eq!(branch_params, [12_352, 18_528 + 110_720, 3_088 + 12_832, 6_176]);
    assert_eq!(inceptions[0].branches[3].layers, ["3×3 max-pool /1", "1×1 conv 32, ReLU"]);
    assert_eq!(inceptions[0].branches[2].output, [1, 32, 12, 12]);
    assert_eq!(view.blocks[0].layers, ["7×7 conv 64 /2, ReLU", "3×3 max-pool /2"]);
}

#[test]
fn activation_maps_are_the_branch_outputs_of_each_inception_block() {
    let (model, device) = model();
    let input = Tensor::<4>::random([1, 1, 96, 96], Distribution::Default, &device);
    let expected = common::inception_shapes(|side| side);
    for (index, (branch_shapes, concat)) in expected.iter().enumerate() {
        let branches = model.inception_branches(input.clone(), index).expect("nine blocks");
        assert_eq!(branches.iter().map(Tensor::dims).collect::<Vec<_>>(), *branch_shapes, "block {}", common::INCEPTIONS_96[index].0);
        // Concatenated they are the block's output: for 5b, what the global pool averages.
        if index == 8 {
            let pooled: Vec<f32> = Tensor::cat(branches, 1).mean_dim(3).mean_dim(2).into_data().try_to_vec().unwrap();
            assert_eq!(pooled.len(), concat[1]);
            assert!(pooled.iter().all(|v| v.is_finite() && *v >= 0.0), "ReLU outputs");
        }
    }
    assert!(model.inception_branches(input, 9).is_none());
    assert_eq!(model.stem_filters().dims(), [64, 1, 7, 7]);
}

/// On the CPU backend a 1×1 convolution and its ReLU run as one op of matrix products, the rows
/// or columns shared between the threads (it trains much faster so): the output and every
/// gradient must be `Conv2d`'s, and one image's output too (classifying).
#[test]
fn a_pointwise_convolution_as_a_matrix_product_is_conv2d_forward_and_backward() {
    use burn::module::Param;
    use burn::tensor::activation::relu;
    use googlenet_web::model::ConvReluConfig;
    let device = Device::flex().autodiff();
    device.seed(3);
    let mut layer = ConvReluConfig::new(24, 40, 1).init(&device);
    // A bias that is not zero, so that its gradient and its place in the sum are checked.
    let bias = Tensor::<1>::random([40], Distribution::Uniform(-0.5, 0.5), &device);
    layer.conv.bias = Some(Param::from_tensor(bias));
    let input = Tensor::<4>::random([3, 24, 7, 5], Distribution::Default, &device).require_grad();
    let upstream = Tensor::<4>::random([3, 40, 7, 5], Distribution::Default, &device);

    let largest_difference = |a: Tensor<4>, b: Tensor<4>| (a - b).abs().max().into_scalar::<f32>();
    let as_matmul = layer.forward(input.clone());
    let as_conv = relu(layer.conv.forward(input.clone()));
    assert_eq!(as_matmul.dims(), [3, 40, 7, 5]);
    assert!(largest_difference(as_matmul.clone(), as_conv.clone()) < 1e-5);

    let mut grads_matmul = (as_matmul * upstream.clone()).sum().backward();
    let mut grads_conv = (as_conv * upstream).sum().backward();
    let input_grads = (input.grad_remove(&mut grads_matmul).unwrap(), input.grad_remove(&mut grads_conv).unwrap());
    assert!((input_grads.0 - input_grads.1).abs().max().into_scalar::<f32>() < 1e-5, "input gradient");
    let weight = layer.conv.weight.val();
    let weight_grads = (weight.grad_remove(&mut grads_matmul).unwrap(), weight.grad_remove(&mut grads_conv).unwrap());
    assert!((weight_grads.0.clone() - weight_grads.1).abs().max().into_scalar::<f32>() < 1e-4, "weight gradient");
    assert!(weight_grads.0.abs().max().into_scalar::<f32>() > 0.1, "the gradient is not trivially zero");
    let bias = layer.conv.bias.as_ref().unwrap().val();
    let bias_grads = (bias.grad_remove(&mut grads_matmul).unwrap(), bias.grad_remove(&mut grads_conv).unwrap());
    assert!((bias_grads.0 - bias_grads.1).abs().max().into_scalar::<f32>() < 1e-4, "bias gradient");

    let (layer, image) = (layer.valid(), Tensor::<4>::random([1, 24, 7, 5], Distribution::Default, &Device::flex()));
    assert!(largest_difference(layer.forward(image.clone()), relu(layer.conv.forward(image))) < 1e-5, "one image");
}

/// On the CPU backend an Inception block runs channels first: its three 1×1 heads (p1, p2, p3)
/// are matrix products of its input as it lies, the 3×3 and 5×5 convolutions the model's own
/// op on a square input (`Conv2d` on others), and the branches are concatenated on the first
/// axis. The branches and every gradient must be those of the block written with `Conv2d`
/// layer by layer, on a square input and on one that is not.
#[test]
fn an_inception_block_run_channels_first_is_the_block_with_conv2d_forward_and_backward() {
    for [height, width] in [[7, 5], [6, 6]] {
        inception_block_is_conv2d([3, 24, height, width]);
    }
}

fn inception_block_is_conv2d(shape: [usize; 4]) {
    use burn::tensor::activation::relu;
    use googlenet_web::model::InceptionConfig;
    let device = Device::flex().autodiff();
    device.seed(5);
    let block = InceptionConfig::new(24, 8, [6, 10], [4, 6], 5).init(&device);
    let input = Tensor::<4>::random(shape, Distribution::Default, &device).require_grad();

    let shared = block.forward_branches(input.clone());
    let as_conv: Vec<Tensor<4>> = block
        .branches
        .iter()
        .map(|branch| {
            let x = match &branch.pool {
                Some(pool) => pool.forward(input.clone()),
                None => input.clone(),
            };
            branch.convs.iter().fold(x, |x, conv| relu(conv.conv.forward(x)))
        })
        .collect();
    let channels: Vec<usize> = shared.iter().map(|branch| branch.dims()[1]).collect();
    assert_eq!(channels, [8, 10, 6, 5]);
    let largest_difference = |a: Tensor<4>, b: Tensor<4>| (a - b).abs().max().into_scalar::<f32>();
    for (index, (a, b)) in shared.iter().zip(&as_conv).enumerate() {
        assert_eq!(a.dims(), b.dims(), "branch p{}", index + 1);
        assert!(largest_difference(a.clone(), b.clone()) < 1e-5, "branch p{}", index + 1);
    }

    // One upstream gradient for the concatenated output, through both forms.
    let upstream = Tensor::<4>::random([3, 29, shape[2], shape[3]], Distribution::Default, &device);
    let mut grads_shared = (Tensor::cat(shared, 1) * upstream.clone()).sum().backward();
    let mut grads_conv = (Tensor::cat(as_conv, 1) * upstream).sum().backward();
    let input_grads = (input.grad_remove(&mut grads_shared).unwrap(), input.grad_remove(&mut grads_conv).unwrap());
    assert!(largest_difference(input_grads.0, input_grads.1) < 1e-5, "input gradient");
    for (index, branch) in block.branches.iter().enumerate() {
        for (layer, conv) in branch.convs.iter().enumerate() {
            let weight = conv.conv.weight.val();
            let grads = (weight.grad_remove(&mut grads_shared).unwrap(), weight.grad_remove(&mut grads_conv).unwrap());
            assert!(grads.1.clone().abs().max().into_scalar::<f32>() > 1e-3, "p{} layer {layer}: a gradient that is not zero", index + 1);
            assert!(largest_difference(grads.0, grads.1) < 1e-4, "p{} layer {layer}: weight gradient", index + 1);
            let bias = conv.conv.bias.as_ref().expect("a bias").val();
            let grads = (bias.grad_remove(&mut grads_shared).unwrap(), bias.grad_remove(&mut grads_conv).unwrap());
            assert!((grads.0 - grads.1).abs().max().into_scalar::<f32>() < 1e-4, "p{} layer {layer}: bias gradient", index + 1);
        }
    }
}

/// On the CPU backend the 3×3 convolutions compute their weight gradient as one matrix product
/// of the output gradient with the input's shifted copies (a backend extension): the output and
/// every gradient must be `Conv2d`'s. The first case is b2's layer at batch 31, which each
/// product takes a task of a few images at a time, the last task with fewer (on one to three
/// threads); one has a 1×1 input, all padding. The 5×5 convolutions go the same way (3a's
/// at batch 7, and one image; 5b's 3×3 planes, where the kernel reaches past the plane on
/// both sides), and so does b1's 7×7 stride-2 convolution, with TensorFlow's
/// 'same' padding: 2 before and 3 after on even sides (b1's, at batch 9; and 4×4), 3 and 3 on
/// odd ones (9×9). The 3×3 ones on planes of 6×6 and more go by Winograd's algorithm: F(6×6,
/// 3×3) on 24×24 and 17×17 planes (a few images a task, the last tiles past the plane), 6×6
/// and 10×10 (the whole batch at once); F(4×4, 3×3) on 13×13 (a few images a task) and 8×8
/// (the whole batch).
#[test]
fn a_kxk_convolution_with_its_own_weight_gradient_is_conv2d_forward_and_backward() {
    use burn::module::Param;
    use burn::tensor::activation::relu;
    use googlenet_web::model::ConvReluConfig;
    let device = Device::flex().autodiff();
    device.seed(11);
    // Flex's seed is shared by the tests running beside this one, so the draws differ from run
    // to run: the 1×1 input has 32 outputs, so that not all of them are cut by the ReLU.
    let cases = [
        ((3, 1), [31, 64, 192, 24]),
        ((3, 1), [3, 6, 10, 7]),
        ((3, 1), [4, 5, 8, 1]),
        ((5, 1), [7, 16, 32, 12]),
        ((5, 1), [1, 6, 10, 6]),
        ((5, 1), [5, 3, 8, 3]),
        ((3, 1), [6, 2, 8, 2]),
        ((3, 1), [2, 5, 7, 13]),
        ((3, 1), [9, 16, 24, 6]),
        ((3, 1), [1, 8, 12, 8]),
        ((3, 1), [3, 7, 9, 10]),
        ((3, 1), [2, 6, 5, 17]),
        ((7, 2), [9, 1, 64, 96]),
        ((7, 2), [3, 2, 5, 9]),
        ((7, 2), [2, 3, 4, 4]),
    ];
    for ((kernel, stride), [batch, cin, cout, side]) in cases {
        let mut layer = ConvReluConfig::new(cin, cout, kernel).with_stride(stride).init(&device);
        let bias = Tensor::<1>::random([cout], Distribution::Uniform(-0.5, 0.5), &device);
        layer.conv.bias = Some(Param::from_tensor(bias));
        let input = Tensor::<4>::random([batch, cin, side, side], Distribution::Default, &device).require_grad();
        let out_side = side.div_ceil(stride);
        let upstream = Tensor::<4>::random([batch, cout, out_side, out_side], Distribution::Default, &device);

        let largest_difference = |a: Tensor<4>, b: Tensor<4>| (a - b).abs().max().into_scalar::<f32>();
        let own = layer.forward(input.clone());
        let before_relu = layer.conv.forward(input.clone());
        assert_eq!(own.dims(), [batch, cout, out_side, out_side], "{kernel}×{kernel} /{stride}");
        assert!(largest_difference(own.clone(), relu(before_relu.clone())) < 1e-4, "{kernel}×{kernel}: output");
        // The ReLU of both as ours cut it: of 3.4 million outputs a few lie within rounding of
        // zero, and the two sums' rounding would cut one's gradient there and not the other's.
        let as_conv = before_relu * own.clone().detach().greater_elem(0.0).float();

        let mut grads_own = (own * upstream.clone()).sum().backward();
        let mut grads_conv = (as_conv * upstream).sum().backward();
        let input_grads = (input.grad_remove(&mut grads_own).unwrap(), input.grad_remove(&mut grads_conv).unwrap());
        assert!(largest_difference(input_grads.0, input_grads.1) < 1e-4, "{kernel}×{kernel}: input gradient");
        let weight = layer.conv.weight.val();
        let weight_grads = (weight.grad_remove(&mut grads_own).unwrap(), weight.grad_remove(&mut grads_conv).unwrap());
        let scale = weight_grads.1.clone().abs().max().into_scalar::<f32>();
        assert!(scale > 1e-3, "{kernel}×{kernel}, {side}×{side}: the gradient is not trivially zero");
        let error = largest_difference(weight_grads.0, weight_grads.1) / scale;
        assert!(error < 1e-5, "{kernel}×{kernel}: weight gradient, relative error {error}");
        let bias = layer.conv.bias.as_ref().unwrap().val();
        let bias_grads = (bias.grad_remove(&mut grads_own).unwrap(), bias.grad_remove(&mut grads_conv).unwrap());
        let scale = bias_grads.1.clone().abs().max().into_scalar::<f32>();
        assert!(((bias_grads.0 - bias_grads.1).abs().max().into_scalar::<f32>()) / scale < 1e-5, "{kernel}×{kernel}: bias gradient");
    }
}

/// On the CPU backend the 3×3 'same' max-pools run as the model's own op: outputs and input
/// gradients must be `MaxPool2d`'s, stride 2 (b1, b2, the stage pools) and stride 1 (each
/// Inception block's p4), on even and odd sides, training and classifying. p4's input is a
/// ReLU of normal noise, so many windows are all zeros: the gradient must go to the same one
/// of the tied positions.
#[test]
fn the_cpu_max_pool_is_max_pool_2d_forward_and_backward() {
    use googlenet_web::model::{ConvPoolBlockConfig, ConvReluConfig, InceptionConfig};
    let device = Device::flex().autodiff();
    device.seed(13);
    let largest_difference = |a: Tensor<4>, b: Tensor<4>| (a - b).abs().max().into_scalar::<f32>();
    let block = ConvPoolBlockConfig::new(vec![ConvReluConfig::new(3, 6, 1)]).init(&device);
    let p4 = &InceptionConfig::new(6, 1, [1, 1], [1, 1], 2).init(&device).branches[3];
    let p4_pool = p4.pool.as_ref().unwrap();
    for [height, width] in [[12usize, 12], [7, 9], [48, 48], [5, 2], [2, 1], [1, 1]] {
        let input = Tensor::<4>::random([2, 3, height, width], Distribution::Default, &device).require_grad();
        let upstream = Tensor::<4>::random([2, 6, height.div_ceil(2), width.div_ceil(2)], Distribution::Default, &device);
        let own = block.forward(input.clone());
        let reference = block.pool.forward(block.convs[0].forward(input.clone()));
        assert_eq!(own.dims(), reference.dims(), "{height}×{width}, stride 2");
        assert!(largest_difference(own.clone(), reference.clone()) == 0.0, "{height}×{width}, stride 2: output");
        let mut grads_own = (own * upstream.clone()).sum().backward();
        let mut grads_reference = (reference * upstream).sum().backward();
        let grads = (input.grad_remove(&mut grads_own).unwrap(), input.grad_remove(&mut grads_reference).unwrap());
        assert!(grads.1.clone().abs().max().into_scalar::<f32>() > 0.0, "a gradient that is not zero");
        assert!(largest_difference(grads.0, grads.1) < 1e-6, "{height}×{width}, stride 2: input gradient");

        // p4: pool (stride 1), then its 1×1 convolution.
        let x = burn::tensor::activation::relu(Tensor::<4>::random([2, 6, height, width], Distribution::Normal(0.0, 1.0), &device)).require_grad();
        let upstream = Tensor::<4>::random([2, 2, height, width], Distribution::Default, &device);
        let own = p4.forward(x.clone());
        let reference = p4.convs[0].forward(p4_pool.forward(x.clone()));
        assert!(largest_difference(own.clone(), reference.clone()) < 1e-6, "{height}×{width}, stride 1: output");
        let mut grads_own = (own * upstream.clone()).sum().backward();
        let mut grads_reference = (reference * upstream).sum().backward();
        let grads = (x.grad_remove(&mut grads_own).unwrap(), x.grad_remove(&mut grads_reference).unwrap());
        assert!(largest_difference(grads.0, grads.1) < 1e-5, "{height}×{width}, stride 1: input gradient");

        // Classifying (no autodiff): the pool compares values only.
        let (block, p4) = (block.valid(), p4.valid());
        let x = burn::tensor::activation::relu(Tensor::<4>::random([2, 6, height, width], Distribution::Normal(0.0, 1.0), &Device::flex()));
        let own = p4.forward(x.clone());
        let reference = p4.convs[0].forward(p4.pool.as_ref().unwrap().forward(x.clone()));
        assert!(largest_difference(own, reference) < 1e-6, "{height}×{width}, stride 1, no autodiff");
        let x = Tensor::<4>::random([2, 3, height, width], Distribution::Normal(0.0, 1.0), &Device::flex());
        let own = block.forward(x.clone());
        let reference = block.pool.forward(block.convs[0].forward(x));
        assert!(largest_difference(own, reference) == 0.0, "{height}×{width}, stride 2, no autodiff");
    }
}

/// Classifying one image on the CPU device runs each convolution as one matrix product of the
/// weight with the image (its shifted copies for the larger kernels), with no layout copies:
/// the output must be `Conv2d`'s, b1's 7×7 stride-2 one included.
#[test]
fn one_image_convolutions_are_conv2d() {
    use burn::module::Param;
    use burn::tensor::activation::relu;
    use googlenet_web::model::ConvReluConfig;
    let device = Device::flex();
    device.seed(17);
    for (kernel, stride) in [(1, 1), (3, 1), (5, 1), (7, 2)] {
        // 16 outputs for the 1×1 image, so that not all of them are cut by the ReLU.
        for [batch, cin, cout, side] in [[1, 64, 192, 24], [1, 5, 7, 3], [1, 4, 16, 1], [2, 5, 7, 6], [1, 1, 64, 96]] {
            let mut layer = ConvReluConfig::new(cin, cout, kernel).with_stride(stride).init(&device);
            let bias = Tensor::<1>::random([cout], Distribution::Uniform(-0.5, 0.5), &device);
            layer.conv.bias = Some(Param::from_tensor(bias));
            let input = Tensor::<4>::random([batch, cin, side, side], Distribution::Normal(0.0, 1.0), &device);
            let own = layer.forward(input.clone());
            let as_conv = relu(layer.conv.forward(input));
            assert_eq!(own.dims(), [batch, cout, side.div_ceil(stride), side.div_ceil(stride)]);
            let error = (own - as_conv.clone()).abs().max().into_scalar::<f32>();
            assert!(as_conv.max().into_scalar::<f32>() > 1e-3, "an output that is not zero");
            assert!(error < 1e-4, "{kernel}×{kernel} /{stride}, {batch} × {cin} → {cout} at {side}×{side}: largest difference {error}");
        }
    }
}
