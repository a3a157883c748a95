"""Plausible wrong answers for solutions/01_chain_rule: each must lose exactly the points of `fails`."""

WRONG_ANSWERS = [
    dict(cell="numeric_derivative",
         fails=["test_numeric_derivative"],
         why="forward difference instead of central difference (error of order h, not h**2)",
         source='''def numeric_derivative(f, x, h=1e-5):
    return (f(x + h) - f(x)) / h
'''),
    dict(cell="numeric_derivative",
         fails=["test_numeric_derivative"],
         why="ignores the step argument and always uses 1e-5",
         source='''def numeric_derivative(f, x, h=1e-5):
    step = 1e-5
    return (f(x + step) - f(x - step)) / (2 * step)
'''),
    dict(cell="composite_derivative",
         fails=["test_composite_derivative"],
         why="chain rule stops one level early: forgets the inner derivative 2x",
         source='''def composite_derivative(x):
    return np.exp(np.sin(x ** 2)) * np.cos(x ** 2)
'''),
    dict(cell="composite_derivative",
         fails=["test_composite_derivative"],
         why="uses math functions, so the array input of the hidden test fails",
         source='''def composite_derivative(x):
    return math.exp(math.sin(x ** 2)) * math.cos(x ** 2) * 2 * x
'''),
    dict(cell="add",
         fails=["test_add"],
         why="computes the sum but forgets to record parents and local derivatives",
         source='''def add(a, b):
    a, b = as_value(a), as_value(b)
    return Value(a.data + b.data)
'''),
    dict(cell="add",
         fails=["test_add"],
         why="does not wrap plain numbers (add(a, 5) crashes)",
         source='''def add(a, b):
    return Value(a.data + b.data, parents=(a, b), local_grads=(1.0, 1.0), op="+")
'''),
    dict(cell="mul",
         fails=["test_mul"],
         why="local derivatives swapped: d(ab)/da written as a instead of b",
         source='''def mul(a, b):
    a, b = as_value(a), as_value(b)
    return Value(a.data * b.data, parents=(a, b), local_grads=(a.data, b.data), op="*")
'''),
    dict(cell="tanh",
         fails=["test_tanh"],
         why="local derivative 1 - x**2 with the input instead of 1 - tanh(x)**2",
         source='''def tanh(a):
    a = as_value(a)
    t = math.tanh(a.data)
    return Value(t, parents=(a,), local_grads=(1.0 - a.data ** 2,), op="tanh")
'''),
    dict(cell="tanh",
         fails=["test_tanh"],
         why="forward value through exp overflows for large |x|",
         source='''def tanh(a):
    a = as_value(a)
    e2 = math.exp(2 * a.data)
    t = (e2 - 1) / (e2 + 1)
    return Value(t, parents=(a,), local_grads=(1.0 - t * t,), op="tanh")
'''),
    dict(cell="exp",
         fails=["test_exp"],
         why="local derivative is the input x instead of exp(x)",
         source='''def exp(a):
    a = as_value(a)
    return Value(math.exp(a.data), parents=(a,), local_grads=(a.data,), op="exp")
'''),
    dict(cell="topo_sort",
         fails=["test_topo_sort"],
         why="depth-first search without a visited set: a node used twice is listed twice",
         source='''def topo_sort(root):
    order = []

    def visit(node):
        for parent in node.parents:
            visit(parent)
        order.append(node)

    visit(root)
    return order
'''),
    dict(cell="topo_sort",
         fails=["test_topo_sort"],
         why="appends a node before visiting its parents (pre-order), so children come first",
         source='''def topo_sort(root):
    order, visited = [], set()

    def visit(node):
        if node in visited:
            return
        visited.add(node)
        order.append(node)
        for parent in node.parents:
            visit(parent)

    visit(root)
    return order
'''),
    dict(cell="backward",
         fails=["test_backward"],
         why="assigns instead of accumulating: the contributions of a node used twice do not add up",
         source='''def backward(root):
    root.grad = 1.0
    for node in reversed(topo_sort(root)):
        for parent, local in zip(node.parents, node.local_grads):
            parent.grad = local * node.grad
'''),
    dict(cell="backward",
         fails=["test_backward"],
         why="walks the topological order forwards, before the gradients of the children are known",
         source='''def backward(root):
    root.grad = 1.0
    for node in topo_sort(root):
        for parent, local in zip(node.parents, node.local_grads):
            parent.grad += local * node.grad
'''),
    # Caught only by the adversarial hidden tests added after the grading audit (issue 10).
    dict(cell="composite_derivative",
         fails=["test_composite_derivative"],
         why="a central-difference estimate where the text asks for the chain-rule formula",
         source='''def composite_derivative(x):
    h = 1e-5
    return (np.exp(np.sin((x + h) ** 2)) - np.exp(np.sin((x - h) ** 2))) / (2 * h)
'''),
    dict(cell="topo_sort",
         fails=["test_topo_sort"],
         why="breadth-first order from the root, reversed: valid on shallow graphs, wrong when a parent is also reached later",
         source='''def topo_sort(root):
    order, seen, queue = [], {id(root)}, [root]
    while queue:
        node = queue.pop(0)
        order.append(node)
        for parent in node.parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                queue.append(parent)
    return order[::-1]
'''),
    dict(cell="backward",
         fails=["test_backward"],
         why="breadth-first walk from the root instead of the topological order: a node can pass on its gradient too early",
         source='''def backward(root):
    root.grad = 1.0
    queue, seen = [root], {id(root)}
    while queue:
        node = queue.pop(0)
        for parent, local in zip(node.parents, node.local_grads):
            parent.grad += local * node.grad
            if id(parent) not in seen:
                seen.add(id(parent))
                queue.append(parent)
'''),
]

# Correct answers in another style than the reference: each must get full marks.
RIGHT_ANSWERS = [
    dict(cell="numeric_derivative",
         why="evaluates both sides first and halves the quotient",
         source='''def numeric_derivative(f, x, h=1e-5):
    forward, backward = f(x + h), f(x - h)
    return 0.5 * (forward - backward) / h
'''),
    dict(cell="composite_derivative",
         why="one expression, factors in another order, x * x for x ** 2",
         source='''def composite_derivative(x):
    return 2 * x * np.cos(x * x) * np.exp(np.sin(x * x))
'''),
    dict(cell="add",
         why="positional Value arguments and a list of local gradients",
         source='''def add(a, b):
    a, b = as_value(a), as_value(b)
    return Value(a.data + b.data, [a, b], [1, 1], "+")
'''),
    dict(cell="mul",
         why="builds the node first, then reads the operands from it",
         source='''def mul(a, b):
    a, b = as_value(a), as_value(b)
    out = Value(a.data * b.data, parents=(a, b), local_grads=(b.data, a.data))
    out.op = "*"
    return out
'''),
    dict(cell="tanh",
         why="numpy's tanh and the derivative factored as (1 - t)(1 + t)",
         source='''def tanh(a):
    a = as_value(a)
    t = float(np.tanh(a.data))
    return Value(t, parents=(a,), local_grads=((1 - t) * (1 + t),), op="tanh")
'''),
    dict(cell="exp",
         why="numpy's exp instead of math's",
         source='''def exp(a):
    a = as_value(a)
    e = float(np.exp(a.data))
    return Value(e, parents=(a,), local_grads=(e,), op="exp")
'''),
    dict(cell="topo_sort",
         why="iterative depth-first search with an explicit stack instead of recursion",
         source='''def topo_sort(root):
    order, done, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in done:
            continue
        done.add(id(node))
        stack.append((node, True))
        for parent in reversed(node.parents):
            if id(parent) not in done:
                stack.append((parent, False))
    return order
'''),
    dict(cell="backward",
         why="index loop over the reversed order, gradients accumulated with an explicit sum",
         source='''def backward(root):
    order = topo_sort(root)
    root.grad = 1.0
    for i in range(len(order) - 1, -1, -1):
        node = order[i]
        for j in range(len(node.parents)):
            node.parents[j].grad = node.parents[j].grad + node.local_grads[j] * node.grad
'''),
]
